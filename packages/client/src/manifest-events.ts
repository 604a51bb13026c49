import path from 'node:path';
import {
  isFinalStatus,
  type JobEvent,
  type JobState,
  type Manifest,
  RESULTS_DIR,
  readManifest,
} from '@jw/core';
import { type EventStream, sleep } from './channel.js';

/** How often the manifest is read; SPEC 4 promises a tailing controller output within a second. */
export const POLL_MS = 200;

/** The event a change of the manifest stands for: the job's state, and while running, its step. */
export function eventOfManifest(manifest: Manifest, jobDir: string): JobEvent {
  const running = manifest.steps.at(-1);
  const state: JobState = manifest.status;
  return {
    jobId: manifest.jobId,
    state,
    attempt: manifest.attempt,
    workerId: manifest.worker.id,
    at: new Date().toISOString(),
    ...(state === 'running' && running?.status === 'running'
      ? {
          step: {
            index: running.index,
            name: running.name,
            logFile: path.join(jobDir, RESULTS_DIR, running.log),
          },
        }
      : {}),
    ...(isFinalStatus(state) ? { exitCode: manifest.exitCode } : {}),
    ...(manifest.error === undefined ? {} : { error: manifest.error }),
    ...(manifest.errorCode === undefined ? {} : { errorCode: manifest.errorCode }),
  };
}

/** What makes two manifests the same event: state, attempt and the running step. */
function keyOf(m: Manifest): string {
  const last = m.steps.at(-1);
  return `${m.attempt}:${m.status}:${m.steps.length}:${last?.status ?? ''}`;
}

/**
 * Progress for transports without progress messages (the file queue, the HTTP backend):
 * the manifest as it changes (SPEC 5 writes it at the start, after each step, at the end).
 * A final manifest already there when watching starts is an earlier run's and is skipped.
 */
export async function watchManifestEvents(
  jobDir: string,
  stream: EventStream<JobEvent>,
  signal: AbortSignal,
): Promise<void> {
  // Read once before the request goes out, so an earlier run's manifest is known as such.
  const initial = await readManifest(jobDir);
  let last = initial && isFinalStatus(initial.status) ? keyOf(initial) : undefined;
  void (async () => {
    while (!signal.aborted && !stream.ended) {
      const manifest = await readManifest(jobDir);
      if (manifest) {
        const key = keyOf(manifest);
        if (key !== last) stream.push(eventOfManifest(manifest, jobDir));
        last = key;
      }
      await sleep(POLL_MS, signal);
    }
  })();
}
