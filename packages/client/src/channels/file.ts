import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type JobEvent, type ResultMessage, writeFileAtomic } from '@jw/core';
import { queueDirs } from '@jw/transport-file';
import type { Channel, JobWatch, WorkerStatus } from '../channel.js';
import { ClientError } from '../errors.js';
import { POLL_MS } from '../manifest-events.js';
import { pollWatch } from './poll-watch.js';
import { workerStatusOf } from './worker-status.js';

async function readJson<T>(file: string): Promise<T | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    // Written in place by someone else and not complete yet: read again.
    return undefined;
  }
}

/** The watched folder (SPEC 9): requests into `pending/`, results from `results/{id}.json`. */
export function fileChannel(queueDir: string): Channel {
  const dirs = queueDirs(queueDir);
  const label = `file:${dirs.root}`;

  const checkQueue = async () => {
    const info = await stat(dirs.root).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new ClientError(
        `queue folder ${dirs.root} does not exist`,
        'start the file worker on it first (file-worker --queue-dir …), or fix --via file:DIR',
      );
    }
  };

  return {
    kind: 'file',
    label,
    async watch(id, jobDir): Promise<JobWatch> {
      await checkQueue();
      const resultFile = path.join(dirs.results, `${id}.json`);
      const progressFile = path.join(dirs.progress, `${id}.json`);
      // An earlier run's result or progress of the same id would answer at once.
      await Promise.all([resultFile, progressFile].map((f) => unlink(f).catch(() => {})));
      return pollWatch(
        id,
        jobDir,
        POLL_MS,
        () => readJson<ResultMessage>(resultFile),
        () => readJson<JobEvent>(progressFile),
      );
    },
    async send(request) {
      await checkQueue();
      await mkdir(dirs.pending, { recursive: true });
      // Written beside pending/ and renamed in, so a worker never takes half a file.
      const tmp = path.join(dirs.root, `.${request.id}.${process.pid}.tmp`);
      await writeFile(tmp, `${JSON.stringify(request)}\n`);
      await rename(tmp, path.join(dirs.pending, `${request.id}.json`));
    },
    async cancel(id) {
      await checkQueue();
      await mkdir(dirs.cancel, { recursive: true });
      await writeFileAtomic(path.join(dirs.cancel, id), `${new Date().toISOString()}\n`);
      return {
        sent: true,
        detail: `wrote ${path.join(dirs.cancel, id)}; the worker running it removes it when it cancels`,
      };
    },
    async workers() {
      await checkQueue();
      const workers: WorkerStatus[] = [];
      const names = await readdir(dirs.workers).catch(() => [] as string[]);
      for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
        const text = await readFile(path.join(dirs.workers, name), 'utf8').catch(() => undefined);
        let beat: Record<string, unknown> | undefined;
        try {
          beat = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
        } catch {
          // Not a heartbeat (they are written whole, by rename): skip it.
        }
        if (beat && typeof beat === 'object')
          workers.push(
            workerStatusOf(beat, {
              workerId: name.slice(0, -'.json'.length),
              transport: 'file',
            }),
          );
      }
      return workers;
    },
    async close() {},
  };
}
