import type { WorkerHeartbeat } from '@jw/core';
import type { WorkerStatus } from '../channel.js';

const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const strings = (v: unknown) =>
  Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined;
const numbers = (v: unknown) =>
  Array.isArray(v) && v.every((n) => typeof n === 'number') ? (v as number[]) : undefined;

/**
 * A heartbeat as received (SPEC 7: the same fields on every transport), read field by
 * field, since an older worker or another client may have sent fewer or other ones.
 * `fallback` fills what the heartbeat does not say (the id from its topic, its transport).
 */
export function workerStatusOf(
  beat: Partial<Record<keyof WorkerHeartbeat | 'active_jobs', unknown>>,
  fallback: { workerId: string; transport: string; status?: string; at?: string },
): WorkerStatus {
  const status: WorkerStatus = {
    workerId: text(beat.workerId) ?? fallback.workerId,
    status: text(beat.status) ?? fallback.status ?? 'unknown',
    transport: text(beat.transport) ?? fallback.transport,
  };
  const fields: Partial<WorkerStatus> = {
    state: text(beat.state),
    hostname: text(beat.hostname),
    pid: count(beat.pid),
    version: text(beat.version),
    activeJobs: strings(beat.activeJobs) ?? strings(beat.active_jobs),
    concurrency: count(beat.concurrency),
    loadAverage: numbers(beat.loadAverage),
    startedAt: text(beat.startedAt),
    at: text(beat.at) ?? fallback.at,
  };
  for (const [key, value] of Object.entries(fields))
    if (value !== undefined) Object.assign(status, { [key]: value });
  return status;
}
