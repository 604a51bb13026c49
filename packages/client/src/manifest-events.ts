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
): Promise<{ finish(): Promise<void> }> {
  // Read once before the request goes out, so an earlier run's manifest is known as such.
  const initial = await readManifest(jobDir);
  const stale = initial && isFinalStatus(initial.status) ? initial : undefined;
  let last = stale ? keyOf(stale) : undefined;
  let attempt = stale?.attempt;
  let stepsSeen = stale?.steps.length ?? 0;
  const pass = async () => {
    {
      const manifest = await readManifest(jobDir);
      if (manifest) {
        if (manifest.attempt !== attempt) {
          attempt = manifest.attempt;
          stepsSeen = 0;
        }
        const key = keyOf(manifest);
        if (key !== last) {
          // Steps that started and ended between two reads still get their "running".
          const event = eventOfManifest(manifest, jobDir);
          const upTo = event.step ? manifest.steps.length - 1 : manifest.steps.length;
          for (const record of manifest.steps.slice(stepsSeen, upTo)) {
            stream.push({
              jobId: event.jobId,
              attempt: event.attempt,
              workerId: event.workerId,
              at: event.at,
              state: 'running',
              step: {
                index: record.index,
                name: record.name,
                logFile: path.join(jobDir, RESULTS_DIR, record.log),
              },
            });
          }
          stream.push(event);
        }
        stepsSeen = manifest.steps.length;
        last = key;
      }
    }
  };
  let running = Promise.resolve();
  void (async () => {
    while (!signal.aborted && !stream.ended) {
      running = pass();
      await running;
      await sleep(POLL_MS, signal);
    }
  })();
  return {
    /** One last read (the result came, so the manifest is final), then the stream ends. */
    async finish() {
      await running;
      if (!stream.ended) await pass();
      stream.end();
    },
  };
}
