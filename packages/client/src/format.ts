import type { JobEvent, Manifest, ResultMessage } from '@jw/core';
import type { WorkerStatus } from './channel.js';
import type { JobStatusInfo } from './status.js';

function seconds(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : ` in ${(ms / 1000).toFixed(1)} s`;
}

/** One stderr line per progress event. */
export function eventLine(event: JobEvent): string {
  const p = event.progress;
  if (p) {
    const percent = p.percent === undefined ? '' : ` ${p.percent}%`;
    const message = p.message === undefined ? '' : ` ${p.message}`;
    return `jw: ${event.jobId} step ${p.step.index} (${p.step.name})${percent}${message}`;
  }
  const step = event.step ? ` step ${event.step.index} (${event.step.name})` : '';
  const worker = event.state === 'claimed' ? ` by ${event.workerId}` : '';
  const exit = event.exitCode === undefined ? '' : `, exit ${event.exitCode}`;
  const error = event.error ? `: ${event.error}` : '';
  return `jw: ${event.jobId} ${event.state}${step}${worker}${exit}${error}`;
}

export function resultLine(result: ResultMessage): string {
  const error = result.error ? `: ${result.error}` : '';
  const replayed = result.replayed ? ' (stored result of an earlier run)' : '';
  return `jw: ${result.id} ${result.status}, exit ${result.exitCode}${seconds(result.durationMs)}${error}${replayed}`;
}

export function statusText(info: JobStatusInfo): string {
  const m: Manifest | undefined = info.manifest;
  const lines: string[] = [];
  if (!m) {
    lines.push(`${info.id}: not started (no results/result.json yet)`);
  } else {
    lines.push(
      `${info.id}: ${m.status}${m.exitCode === null ? '' : `, exit ${m.exitCode}`}, attempt ${m.attempt}, worker ${m.worker.id} (${m.worker.transport}, ${m.worker.hostname})${seconds(m.timing.durationMs)}`,
    );
    if (m.error) lines.push(`  error: ${m.errorCode ? `${m.errorCode} ` : ''}${m.error}`);
    for (const s of m.steps) {
      const how = s.signal ? `signal ${s.signal}` : s.exitCode === null ? '' : `exit ${s.exitCode}`;
      lines.push(
        `  step ${s.index} ${s.name}: ${s.status}${how ? ` (${how})` : ''}${seconds(s.durationMs)}  results/${s.log}`,
      );
    }
    if (m.artifacts.length > 0) lines.push(`  ${m.artifacts.length} artifact(s) in results/`);
  }
  if (info.claim) {
    const c = info.claim;
    lines.push(
      `  claimed by ${c.workerId} (pid ${c.pid} on ${c.hostname}), lease until ${c.expiresAt}`,
    );
  }
  lines.push(`  ${info.jobDir}`);
  return `${lines.join('\n')}\n`;
}

export function workersText(workers: WorkerStatus[]): string {
  if (workers.length === 0) return '';
  const rows = workers.map((w) => [
    w.workerId,
    w.status,
    w.hostname ? `${w.hostname}${w.pid ? `:${w.pid}` : ''}` : '',
    w.state ?? '-',
    w.activeJobs?.length ? w.activeJobs.join(',') : '-',
    w.at ?? '',
  ]);
  const header = ['WORKER', 'STATUS', 'HOST:PID', 'STATE', 'JOBS', 'SEEN'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return `${[header, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}
