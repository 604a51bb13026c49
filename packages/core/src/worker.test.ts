import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canChattr, setImmutable } from '../test/immutable.js';
import { isJwError } from './errors.js';
import { createMemoryTransport } from './memory-transport.js';
import type { Delivery, Transport } from './transport.js';
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

/** A memory transport whose deliveries get `override(delivery)` laid over them. */
function wrapDeliveries(
  bodies: Parameters<typeof createMemoryTransport>[0],
  override: (delivery: Delivery) => Partial<Delivery>,
): Transport {
  const inner = createMemoryTransport(bodies, { ended: true });
  return {
    ...inner,
    async next(signal) {
      const delivery = await inner.next(signal);
      return delivery && { ...delivery, ...override(delivery) };
    },
  };
}

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
    const transport = wrapDeliveries([{ id: 'ack', steps: ['true'] }], (delivery) => ({
      claimed: async () => {
        seen.push(`claimed:${await exists(claimFile)}`);
      },
      complete: async (result, manifest) => {
        seen.push(`complete:${await exists(claimFile)}`);
        await delivery.complete(result, manifest);
      },
    }));
    const summary = await workerWith(transport).run();
    expect(summary.handled).toBe(1);
    expect(seen).toEqual(['claimed:true', 'complete:true']);
    expect(await exists(claimFile)).toBe(false);
  });

  it('removes the claim when the transport says the result is published, before its ack', async () => {
    const claimFile = path.join(box.jobsDir, 'held', 'results', '.claim');
    const seen: string[] = [];
    const transport = wrapDeliveries([{ id: 'held', steps: ['true'] }], (delivery) => ({
      complete: async (result, manifest, published) => {
        seen.push(`published:${await exists(claimFile)}`);
        await published?.();
        seen.push(`ack:${await exists(claimFile)}`);
        // The ack fails: the claim is gone all the same, the broker delivers the job again.
        await delivery.complete(result, manifest);
        throw new Error('ack lost');
      },
    }));
    const error = await workerWith(transport)
      .run()
      .catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    expect(seen).toEqual(['published:true', 'ack:false']);
    expect(await exists(claimFile)).toBe(false);
  });

  it('takes the next job once a result is published, while its ack is still under way', async () => {
    let secondClaimed!: () => void;
    const second = new Promise<void>((resolve) => {
      secondClaimed = resolve;
    });
    const transport = wrapDeliveries(
      [
        { id: 'first', steps: ['true'] },
        { id: 'second', steps: ['true'] },
      ],
      (delivery) => ({
        complete: async (result, manifest, published) => {
          await published?.();
          // The ack of the first waits for the second job: one slot, so only if it is free.
          if (result.id === 'first') await second;
          await delivery.complete(result, manifest);
        },
      }),
    );
    const worker = workerWith(transport, { concurrency: 1 });
    worker.on('event', (e) => {
      if (e.jobId === 'second' && e.state === 'claimed') secondClaimed();
    });
    const summary = await worker.run();
    expect(summary.handled).toBe(2);
    expect(await readdir(box.workspacesDir)).toEqual([]);
  });

  it('removes the workspace of a job whose result could not be published, and keeps its claim', async () => {
    const claimFile = path.join(box.jobsDir, 'unsent', 'results', '.claim');
    const transport = wrapDeliveries([{ id: 'unsent', steps: ['echo x > made.txt'] }], () => ({
      complete: async () => {
        throw new Error('broker gone');
      },
    }));
    const error = await workerWith(transport)
      .run()
      .catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    // The result is on the drive and the claim says it may be unsent: recovery sends it.
    expect(await exists(claimFile)).toBe(true);
    expect(await readdir(box.workspacesDir)).toEqual([]);
  });

  it('is not ready before it has started (transport up, dirs checked)', async () => {
    const transport = createMemoryTransport();
    const worker = workerWith(transport);
    expect(worker.readiness()).toEqual({ ready: false, reason: 'starting' });
    const started = once(worker, 'started');
    const running = worker.run();
    await started;
    expect(worker.readiness()).toEqual({ ready: true });
    transport.end();
    await running;
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

  it('runs every job to its end in a process with nothing else on its loop', async () => {
    // The README's embedding: a daemon worker on the memory transport, its steps started
    // by the launcher. Nothing but the launcher's boot is pending when the first step
    // waits for it; the process must not exit there (it did: code 13, no results).
    const script = `
      import { createMemoryTransport, createWorker } from ${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))};
      const bodies = ['a', 'b', 'c'].map((id) => ({ id, steps: ['true'] }));
      const worker = createWorker({ transport: createMemoryTransport(bodies, { ended: true }),
        jobsDir: ${JSON.stringify(box.jobsDir)}, workspacesDir: ${JSON.stringify(box.workspacesDir)},
        concurrency: 2 });
      const summary = await worker.run();
      process.stdout.write(JSON.stringify(summary.results.map((r) => r.status)));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    // 'close': the output is all read, not only the process gone.
    const [code] = await once(child, 'close');
    expect({ code, out }).toEqual({ code: 0, out: '["success","success","success"]' });
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

  it('fails run() with BAD_CONFIG when the jobs dir is missing or not a dir', async () => {
    for (const jobsDir of [path.join(box.root, 'missing'), path.join(box.root, 'file')]) {
      await writeFile(path.join(box.root, 'file'), '');
      const transport = createMemoryTransport([{ id: 'a', steps: ['true'] }], { ended: true });
      const error = await workerWith(transport, { jobsDir })
        .run()
        .catch((e) => e);
      expect(isJwError(error, 'BAD_CONFIG')).toBe(true);
      expect(error.message).toMatch(/jobs dir .* (is not there|is not a directory)/);
      expect(transport.settlements).toEqual([]);
    }
  });

  it('creates a missing workspaces dir, and fails run() with BAD_CONFIG on one it cannot write', async () => {
    const fresh = path.join(box.root, 'new/workspaces');
    await workerWith(createMemoryTransport([], { ended: true }), { workspacesDir: fresh }).run();
    expect((await stat(fresh)).isDirectory()).toBe(true);
    await writeFile(path.join(box.root, 'ws-file'), '');
    const error = await workerWith(createMemoryTransport([], { ended: true }), {
      workspacesDir: path.join(box.root, 'ws-file'),
    })
      .run()
      .catch((e) => e);
    expect(isJwError(error, 'BAD_CONFIG')).toBe(true);
    expect(error.message).toMatch(/workspaces dir .* cannot be written/);
  });

  it.skipIf(!canChattr)(
    'dead-letters a job whose results/ cannot be written, with a result message; a run of such jobs fails',
    async () => {
      const dirs = ['u1', 'u2', 'u3', 'u4'].map((id) => path.join(box.jobsDir, id, 'results'));
      for (const dir of dirs) await mkdir(dir, { recursive: true });
      for (const dir of dirs) setImmutable(dir, true);
      try {
        const transport = createMemoryTransport(
          ['u1', 'u2', 'u3', 'u4'].map((id) => ({ id, steps: ['true'] })),
          { ended: true },
        );
        const error = await workerWith(transport, { resultsRetries: 2, resultsBackoffMs: 10 })
          .run()
          .catch((e) => e);
        expect(isJwError(error, 'RESULTS_UNWRITABLE')).toBe(true);
        expect(error.message).toMatch(/3 jobs in a row/);
        // The fourth was never taken.
        expect(transport.settlements).toHaveLength(3);
        expect(transport.settlements[0]).toMatchObject({
          kind: 'reject',
          error: { code: 'RESULTS_UNWRITABLE' },
          result: {
            id: 'u1',
            status: 'error',
            manifestFile: null,
            errorCode: 'RESULTS_UNWRITABLE',
          },
        });
        // One such job, and nothing else: still a worker fault.
        const one = createMemoryTransport([{ id: 'u4', steps: ['true'] }], { ended: true });
        const alone = await workerWith(one, { resultsRetries: 1 })
          .run()
          .catch((e) => e);
        expect(isJwError(alone, 'RESULTS_UNWRITABLE')).toBe(true);
        expect(alone.message).toMatch(/every job \(1\)/);
        // A job recorded in between breaks the run.
        const mixed = createMemoryTransport(
          [
            { id: 'u1', steps: ['true'] },
            { id: 'fine', steps: ['true'] },
            { id: 'u2', steps: ['true'] },
          ],
          { ended: true },
        );
        const summary = await workerWith(mixed, { resultsRetries: 1 }).run();
        expect(summary.handled).toBe(3);
        expect(summary.results.map((r) => r.errorCode ?? r.status)).toEqual([
          'RESULTS_UNWRITABLE',
          'success',
          'RESULTS_UNWRITABLE',
        ]);
      } finally {
        for (const dir of dirs) setImmutable(dir, false);
      }
    },
  );

  it.skipIf(!canChattr)(
    'stops taking work while its workspaces dir cannot be written, gives the job back, resumes once it can',
    async () => {
      const transport = createMemoryTransport();
      const worker = workerWith(transport, { recheckMs: 50 });
      const started = once(worker, 'started');
      const running = worker.run();
      await started;
      expect(worker.readiness()).toEqual({ ready: true });
      setImmutable(box.workspacesDir, true);
      try {
        transport.push({ id: 'w', steps: ['true'] });
        await waitFor(() => transport.settlements.length === 1);
        expect(transport.settlements[0]).toMatchObject({ kind: 'release', reason: 'failed' });
        expect(worker.readiness()).toMatchObject({
          ready: false,
          reason: expect.stringMatching(/workspaces dir .* cannot be written/),
        });
        transport.push({ id: 'w', steps: ['true'] });
        // Not taken while the dir stays broken.
        await new Promise((r) => setTimeout(r, 300));
        expect(transport.settlements).toHaveLength(1);
      } finally {
        setImmutable(box.workspacesDir, false);
      }
      await waitFor(() => transport.settlements.length === 2);
      expect(transport.settlements[1]).toMatchObject({
        kind: 'complete',
        result: { id: 'w', status: 'success', attempt: 2 },
      });
      expect(worker.readiness()).toEqual({ ready: true });
      transport.end();
      expect((await running).handled).toBe(1);
    },
  );

  it('refuses bad settings', () => {
    expect(() => workerWith(createMemoryTransport(), { concurrency: 0 })).toThrow(/concurrency/);
  });
});
