import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createWorker } from '@jw/core';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileTransport } from './file-transport.js';
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

describe('file queue cancels', () => {
  it('removes the cancel file of a job that has ended, and leaves one of a job yet to run', async () => {
    const w = createWorker({
      transport: createFileTransport({ queueDir: q.root, stableMs: 50, intervalMs: 100 }),
      jobsDir: box.jobsDir,
      workspacesDir: box.workspacesDir,
      env: { PATH: process.env.PATH ?? '' },
    });
    const running = w.run();
    try {
      await box.makeJob('done-job', { steps: ['true'] });
      await mkdir(q.pending, { recursive: true });
      const tmp = path.join(q.root, '.done-job.tmp');
      await writeFile(tmp, JSON.stringify({ id: 'done-job' }));
      await rename(tmp, path.join(q.pending, 'done-job.json'));
      await waitFor(() => readdir(q.done).then((names) => names.includes('done-job.json')));
      // Late: the job ended before the cancel came, and a later run must not see it.
      await writeFile(path.join(q.cancel, 'done-job'), '');
      await box.makeJob('later-job', { steps: ['true'] });
      await writeFile(path.join(q.cancel, 'later-job'), '');
      await waitFor(async () => !(await readdir(q.cancel)).includes('done-job'));
      expect(await readdir(q.cancel)).toEqual(['later-job']);
    } finally {
      await w.stop();
      await running;
    }
  });
});
