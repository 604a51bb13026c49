import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createWorker } from '@jw/core';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createFileTransport } from './file-transport.js';
import { queueDirs } from './queue-dirs.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(() => box.cleanup());

it('takes a whole request renamed into pending/ at once, without waiting for its mtime to age', async () => {
  const q = queueDirs(path.join(box.root, 'queue'));
  // A stability window far longer than the test's time-out: only a request taken at once passes.
  const transport = createFileTransport({ queueDir: q.root, stableMs: 600_000, intervalMs: 100 });
  const worker = createWorker({
    transport,
    jobsDir: box.jobsDir,
    workspacesDir: box.workspacesDir,
    env: { PATH: process.env.PATH ?? '' },
    maxJobs: 1,
  });
  await mkdir(q.pending, { recursive: true });
  const tmp = path.join(q.root, '.fresh.json');
  await writeFile(tmp, JSON.stringify({ id: 'fresh', steps: ['true'] }));
  await rename(tmp, path.join(q.pending, 'fresh.json'));
  await worker.run();
  const result = JSON.parse(await readFile(path.join(q.results, 'fresh.json'), 'utf8'));
  expect(result).toMatchObject({ id: 'fresh', status: 'success' });
}, 60_000);
