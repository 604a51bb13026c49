import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isJwError } from './errors.js';
import { createMemoryTransport } from './memory-transport.js';
import type { Transport } from './transport.js';
import { createWorker, type WorkerOptions } from './worker.js';
import { createWorkspace } from './workspaces.js';

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

const workerWith = (transport: Transport, extra: Partial<WorkerOptions> = {}) =>
  createWorker({
    transport,
    jobsDir: box.jobsDir,
    workspacesDir: box.workspacesDir,
    env: { PATH: process.env.PATH ?? '' },
    ...extra,
  });

describe('createWorker', () => {
  it('runs no more jobs at once than its concurrency', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => ({ id: `c${i}`, steps: ['sleep 0.2'] }));
    const transport = createMemoryTransport(bodies, { ended: true });
    const worker = workerWith(transport, { concurrency: 2 });
    let running = 0;
    let peak = 0;
    worker.on('event', (e) => {
      if (e.state === 'claimed') peak = Math.max(peak, ++running);
      if (e.state === 'success') running--;
    });
    const summary = await worker.run();
    expect(summary).toMatchObject({ handled: 6, reason: 'ended' });
    expect(peak).toBe(2);
  });

  it('stops after maxJobs results, not counting bad requests, and leaves the rest', async () => {
    const transport = createMemoryTransport([
      'not json',
      { id: '../x' },
      { id: 'a', steps: ['true'] },
      { id: 'b', steps: ['true'] },
    ]);
    const summary = await workerWith(transport, { maxJobs: 1 }).run();
    expect(summary).toMatchObject({ handled: 1, rejected: 2, reason: 'max-jobs' });
    expect(transport.settlements.map((s) => s.kind)).toEqual(['reject', 'reject', 'complete']);
    const rejected = transport.settlements[1];
    expect(rejected?.kind === 'reject' && isJwError(rejected.error, 'BAD_REQUEST')).toBe(true);
  });

  it('answers a bad request with a result when its id is known', async () => {
    const transport = createMemoryTransport([{ id: 'known', steps: 'not-a-list' }], {
      ended: true,
    });
    await workerWith(transport).run();
    const s = transport.settlements[0];
    expect(s?.kind === 'reject' && s.result).toMatchObject({
      id: 'known',
      status: 'error',
      errorCode: 'BAD_REQUEST',
      exitCode: 1,
    });
  });

  it('ends after the idle time-out with nothing to do', async () => {
    const started = Date.now();
    const summary = await workerWith(createMemoryTransport(), { idleTimeoutMs: 200 }).run();
    expect(summary.reason).toBe('idle');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('counts idle time only while no job runs', async () => {
    const transport = createMemoryTransport([{ id: 'long', steps: ['sleep 0.5'] }]);
    const summary = await workerWith(transport, { idleTimeoutMs: 200 }).run();
    expect(summary).toMatchObject({ reason: 'idle', handled: 1 });
  });

  it('on stop lets a job finish within the grace period', async () => {
    const transport = createMemoryTransport([{ id: 'g', steps: ['sleep 0.3'] }]);
    const worker = workerWith(transport);
    worker.on('event', (e) => e.state === 'running' && void worker.stop(5000));
    const summary = await worker.run();
    expect(summary.reason).toBe('stopped');
    expect(transport.settlements).toMatchObject([
      { kind: 'complete', result: { status: 'success' } },
    ]);
  });

  it('on stop past the grace period cancels the job and gives the delivery back', async () => {
    const transport = createMemoryTransport([{ id: 'late', steps: ['sleep 10'] }]);
    const worker = workerWith(transport, { killGraceMs: 200 });
    worker.on('event', (e) => e.state === 'running' && void worker.stop(100));
    const started = Date.now();
    await worker.run();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(transport.settlements).toMatchObject([
      { kind: 'release', reason: 'shutdown', delayMs: 0 },
    ]);
    expect((await box.readResult('late')).status).toBe('requeued');
  });

  it('cancels a job by id through the transport context', async () => {
    const transport = createMemoryTransport([{ id: 'x', steps: ['sleep 10'] }], { ended: true });
    const worker = workerWith(transport);
    worker.on('event', (e) => e.state === 'running' && transport.context?.cancelJob('x'));
    await worker.run();
    expect(transport.settlements).toMatchObject([
      { kind: 'complete', result: { status: 'cancelled' } },
    ]);
    expect(transport.context?.cancelJob('x')).toBe(false);
  });

  it('forwards job events to the delivery', async () => {
    const transport = createMemoryTransport([{ id: 'ev', steps: ['true'] }], { ended: true });
    await workerWith(transport).run();
    expect(transport.events.map((e) => e.state)).toEqual([
      'claimed',
      'staging',
      'running',
      'syncing',
      'success',
    ]);
  });

  it('tells the delivery once its claim exists, and removes the claim only after complete()', async () => {
    const claimFile = path.join(box.jobsDir, 'ack', 'results', '.claim');
    const seen: string[] = [];
    const inner = createMemoryTransport([{ id: 'ack', steps: ['true'] }], { ended: true });
    const transport: Transport = {
      ...inner,
      async next(signal) {
        const delivery = await inner.next(signal);
        if (!delivery) return null;
        return {
          ...delivery,
          claimed: async () => {
            seen.push(`claimed:${await exists(claimFile)}`);
          },
          complete: async (result, manifest) => {
            seen.push(`complete:${await exists(claimFile)}`);
            await delivery.complete(result, manifest);
          },
        };
      },
    };
    const summary = await workerWith(transport).run();
    expect(summary.handled).toBe(1);
    expect(seen).toEqual(['claimed:true', 'complete:true']);
    expect(await exists(claimFile)).toBe(false);
  });

  it('removes workspaces left by dead workers when it starts', async () => {
    const child = spawn('true');
    await once(child, 'exit');
    const ws = await createWorkspace(box.workspacesDir, 'old');
    const owner = path.join(box.workspacesDir, `.${path.basename(ws)}.owner`);
    const record = JSON.parse(await readFile(owner, 'utf8'));
    await writeFile(owner, JSON.stringify({ ...record, pid: child.pid }));
    await workerWith(createMemoryTransport([], { ended: true })).run();
    expect(await readdir(box.workspacesDir)).toEqual([]);
  });

  it('fails run() when the transport fails for good', async () => {
    const broken: Transport = {
      name: 'broken',
      start: async () => {},
      next: async () => {
        throw new Error('broker gone');
      },
      stop: async () => {},
    };
    const error = await workerWith(broken)
      .run()
      .catch((e) => e);
    expect(isJwError(error, 'TRANSPORT_FAILED')).toBe(true);
  });

  it('refuses bad settings', () => {
    expect(() => workerWith(createMemoryTransport(), { concurrency: 0 })).toThrow(/concurrency/);
  });
});
