import { readFile } from 'node:fs/promises';
import { createSandbox, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
beforeEach(async () => {
  box = await createSandbox('jw-file-worker-beat-');
  q = queue(box);
});
afterEach(async () => {
  await killWorkers();
  await box.cleanup();
});

// biome-ignore lint/suspicious/noExplicitAny: the test reads the heartbeat field by field
const beatOf = async (): Promise<Record<string, any> | undefined> => {
  const text = await readFile(q.dir('workers/beat-worker.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : JSON.parse(text);
};

describe('file-worker heartbeat', () => {
  it('keeps workers/{id}.json: idle, busy with the running job, then offline after SIGTERM', async () => {
    const w = startWorker(box, ['--id', 'beat-worker', '--concurrency', '2']);
    const idle = await waitFor(async () => {
      const beat = await beatOf();
      return beat?.state === 'idle' ? beat : undefined;
    }, 60_000);
    expect(idle).toMatchObject({
      workerId: 'beat-worker',
      status: 'online',
      transport: 'file',
      pid: w.child.pid,
      concurrency: 2,
      activeJobs: [],
    });
    expect(idle.loadAverage).toHaveLength(3);
    expect(idle.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof idle.hostname).toBe('string');
    expect(Date.parse(idle.at)).toBeGreaterThan(0);

    const step = gate(box.root);
    await box.makeJob('slow', { steps: [step.wait] });
    await q.drop('slow.json', { id: 'slow' });
    const busy = await waitFor(async () => {
      const beat = await beatOf();
      return beat?.state === 'busy' ? beat : undefined;
    }, 60_000);
    expect(busy).toMatchObject({ status: 'online', activeJobs: ['slow'] });
    await step.open();
    await waitFor(() => q.result('slow'), 60_000);
    await waitFor(async () => (await beatOf())?.state === 'idle', 60_000);

    w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await beatOf()).toMatchObject({
      workerId: 'beat-worker',
      status: 'offline',
      state: 'offline',
      activeJobs: [],
    });
  });
});
