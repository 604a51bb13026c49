import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorCode } from './errors.js';
import type { JobProgress } from './progress.js';
import { NO_FOLLOW, tempName, tempVanished } from './results-dir.js';

export const FINAL_STATUSES = ['success', 'failed', 'timeout', 'cancelled', 'error'] as const;
export type FinalStatus = (typeof FINAL_STATUSES)[number];
/**
 * `running` while a job runs; `requeued` when a worker shut down mid-job and gave it
 * back for another attempt (not final: a redelivery runs it again).
 */
export type JobStatus = FinalStatus | 'running' | 'requeued';
export type StepStatus = FinalStatus | 'running' | 'skipped';

export function isFinalStatus(status: unknown): status is FinalStatus {
  return (FINAL_STATUSES as readonly unknown[]).includes(status);
}

export interface WorkerInfo {
  id: string;
  hostname: string;
  pid: number;
  transport: string;
  version: string;
}

export interface StepRecord {
  index: number;
  name: string;
  command: string;
  status: StepStatus;
  exitCode: number | null;
  signal: string | null;
  durationMs: number | null;
  log: string;
  startedAt?: string;
  error?: string;
  /** What a handler step reported (`uses` steps only), e.g. `http.request`'s status and size. */
  output?: Record<string, unknown>;
}

export interface ArtifactRecord {
  path: string;
  size: number;
  sha256: string;
  change: 'added' | 'modified';
}

/** `results/result.json` (SPEC 5). Field names follow the worker it replaces. */
export interface Manifest {
  schemaVersion: 1;
  jobId: string;
  status: JobStatus;
  exitCode: number | null;
  attempt: number;
  worker: WorkerInfo;
  timing: { start: string; end: string | null; durationMs: number | null };
  steps: StepRecord[];
  artifacts: ArtifactRecord[];
  /** The last progress report of a step, as of the last write. */
  progress?: JobProgress;
  error?: string;
  errorCode?: ErrorCode;
}

export const RESULTS_DIR = 'results';
export const MANIFEST_FILE = 'result.json';

/**
 * Atomic write: a reader sees the old file or the new one, never half of one. The temp
 * file has a short fixed-length name and is created without following a link; the
 * rename replaces a link in `file`'s place instead of writing through it.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const tmp = tempName(path.dirname(file));
    let created = false;
    try {
      const handle = await open(tmp, NO_FOLLOW.create, 0o666);
      created = true;
      try {
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
      return;
    } catch (error) {
      if (created) await unlink(tmp).catch(() => {});
      if (!(created && tempVanished(error, attempt))) throw error;
    }
  }
}

export function manifestPath(jobDir: string): string {
  return path.join(jobDir, RESULTS_DIR, MANIFEST_FILE);
}

export async function writeManifest(jobDir: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(manifestPath(jobDir), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** The stored manifest, or undefined when there is none or it cannot be read as one. */
export async function readManifest(jobDir: string): Promise<Manifest | undefined> {
  try {
    // A link in its place is not read: it may lead anywhere (SPEC 1).
    const text = await readFile(manifestPath(jobDir), { encoding: 'utf8', flag: NO_FOLLOW.read });
    const value = JSON.parse(text) as Manifest;
    return typeof value === 'object' && value !== null && typeof value.status === 'string'
      ? value
      : undefined;
  } catch {
    return undefined;
  }
}

/** The result message published on a transport (SPEC 7). */
export interface ResultMessage {
  id: string;
  status: FinalStatus;
  exitCode: number | null;
  manifestFile: string | null;
  workerId: string;
  attempt?: number;
  durationMs?: number | null;
  error?: string;
  errorCode?: ErrorCode;
  /** True when this is a stored result published again for a redelivered, finished job. */
  replayed?: boolean;
}

export function resultMessageOf(
  manifest: Manifest,
  workerId: string,
  replayed = false,
): ResultMessage {
  const status = isFinalStatus(manifest.status) ? manifest.status : 'error';
  return {
    id: manifest.jobId,
    status,
    exitCode: manifest.exitCode,
    manifestFile: `${RESULTS_DIR}/${MANIFEST_FILE}`,
    workerId,
    attempt: manifest.attempt,
    durationMs: manifest.timing.durationMs,
    ...(manifest.error === undefined ? {} : { error: manifest.error }),
    ...(manifest.errorCode === undefined ? {} : { errorCode: manifest.errorCode }),
    ...(replayed ? { replayed: true } : {}),
  };
}
