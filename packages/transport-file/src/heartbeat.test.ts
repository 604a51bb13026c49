import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createWorker } from '@jw/core';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileTransport, type FileTransportOptions } from './file-transport.js';
import { workerFileName } from './heartbeat.js';
import { queueDirs } from './queue-dirs.js';

let box: Sandbox;
let q: ReturnType<typeof queueDirs>;
beforeEach(async () => {
  box = await createSandbox();
  q = queueDirs(path.join(box.root, 'queue'));
});
afterEach(async () => {
  await box.cleanup();
});

const start = (options: FileTransportOptions, workerId = 'w-beat') => {
  const worker = createWorker({
    transport: createFileTransport({ queueDir: q.root, stableMs: 50, intervalMs: 100, ...options }),
    jobsDir: box.jobsDir,
    workspacesDir: box.workspacesDir,
    workerId,
    env: { PATH: process.env.PATH ?? '' },
  });
  const run = worker.run();
  return { worker, run };
};

const readBeat = (workerId = 'w-beat') =>
  readFile(path.join(q.workers, workerFileName(workerId)), 'utf8')
    .then((text) => JSON.parse(text))
    .catch(() => undefined);

describe('file queue heartbeat', () => {
  it('rewrites workers/{id}.json on its interval, through a temp file', async () => {
    const { worker, run } = start({ heartbeatIntervalMs: 50 });
    const first = await waitFor(readBeat);
    expect(first).toMatchObject({ workerId: 'w-beat', status: 'online', state: 'idle' });
    const later = await waitFor(async () => {
      const beat = await readBeat();
      return beat && Date.parse(beat.at) > Date.parse(first.at) && beat;
    });
    expect(later.startedAt).toBe(first.startedAt);
    await worker.stop();
    await run;
    expect(await readBeat()).toMatchObject({ status: 'offline', state: 'offline' });
    // Only the heartbeat: no temp file is left beside it.
    expect(await readdir(q.workers)).toEqual(['w-beat.json']);
  });

  it('writes none with an interval of 0', async () => {
    const { worker, run } = start({ heartbeatIntervalMs: 0 });
    await waitFor(() => readdir(q.pending).then(() => true));
    await worker.stop();
    await run;
    expect(await readdir(q.workers)).toEqual([]);
  });

  it('names the file safely for any worker id', () => {
    expect(workerFileName('worker-01')).toBe('worker-01.json');
    expect(workerFileName('../x/y')).toBe('%2E.%2Fx%2Fy.json');
    expect(workerFileName('.hidden')).toBe('%2Ehidden.json');
  });
});
