import { mkdir } from 'node:fs/promises';
import path from 'node:path';

/** The folders of a file queue (SPEC 9). */
export interface QueueDirs {
  root: string;
  /** Requests are dropped here (`*.json`; write elsewhere and rename in, or write in place). */
  pending: string;
  /** Taken by a worker (claimed by an atomic rename). */
  processing: string;
  done: string;
  /** Bad requests, each with a `<name>.reason` file beside it. */
  failed: string;
  /** Result messages, `{id}.json`. */
  results: string;
  /** Dropping a file named `{id}` (any content) cancels that running job. */
  cancel: string;
  /** Each worker's heartbeat, `{workerId}.json`. */
  workers: string;
  /** `{id}.json`: the job's latest event (state, step, progress report), replaced as it runs. */
  progress: string;
}

export function queueDirs(root: string): QueueDirs {
  const r = path.resolve(root);
  return {
    root: r,
    pending: path.join(r, 'pending'),
    processing: path.join(r, 'processing'),
    done: path.join(r, 'done'),
    failed: path.join(r, 'failed'),
    results: path.join(r, 'results'),
    cancel: path.join(r, 'cancel'),
    workers: path.join(r, 'workers'),
    progress: path.join(r, 'progress'),
  };
}

export async function ensureQueueDirs(dirs: QueueDirs): Promise<void> {
  for (const dir of [
    dirs.pending,
    dirs.processing,
    dirs.done,
    dirs.failed,
    dirs.results,
    dirs.cancel,
    dirs.workers,
    dirs.progress,
  ]) {
    await mkdir(dir, { recursive: true });
  }
}

/** Request files: `*.json`, not hidden (writers may use `.name.json` or `name.json.tmp` while writing). */
export function isRequestFile(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.');
}
