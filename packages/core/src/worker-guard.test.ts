import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FreeSpace } from './disk-guard.js';
import { createMemoryTransport } from './memory-transport.js';
import type { Transport } from './transport.js';
import { createWorker, type WorkerOptions } from './worker.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox('jw-worker-guard-');
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

const MiB = 1024 * 1024;

describe('worker dead-letter file', () => {
  it('records every rejected request, raw, with why and where it came from', async () => {
    const file = path.join(box.root, 'dead.jsonl');
    const transport = createMemoryTransport(
      ['not json', new Uint8Array([0xc3, 0x28]), { id: 'bad-env', env: 'not an object' }],
      { ended: true },
    );
    const summary = await workerWith(transport, {
      workerId: 'w-dlq',
      deadLetterFile: { path: file },
    }).run();
    expect(summary.rejected).toBe(3);
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({
      transport: 'memory',
      workerId: 'w-dlq',
      errorCode: 'BAD_REQUEST',
      delivery: 'memory-1',
      payload: 'not json',
    });
    expect(lines[1]).toMatchObject({ payloadBase64: 'wyg=', payloadBytes: 2 });
    expect(lines[2]).toMatchObject({
      jobId: 'bad-env',
      payload: '{"id":"bad-env","env":"not an object"}',
    });
    // The transport's own dead-letter output is told as before.
    expect(transport.settlements.map((s) => s.kind)).toEqual(['reject', 'reject', 'reject']);
  });

  it('goes on when the file cannot be written', async () => {
    const transport = createMemoryTransport(['not json', { id: 'ok', steps: ['true'] }], {
      ended: true,
    });
    // The sandbox's jobs dir is a directory: no file can be appended there.
    const summary = await workerWith(transport, { deadLetterFile: { path: box.jobsDir } }).run();
    expect(summary).toMatchObject({ rejected: 1, handled: 1 });
  });
});

describe('worker disk guard', () => {
  it('stops when told to during a free-space check that then finds room (no fetch is left waiting)', async () => {
    let checks = 0;
    let answer: (space: FreeSpace) => void = () => {};
    // Never ends by itself: only the stop ends the worker's wait for a request.
    const transport = createMemoryTransport();
    const worker = workerWith(transport, {
      minFreeSpace: { bytes: 100 * MiB },
      freeSpaceReader: () => {
        checks++;
        return new Promise<FreeSpace>((resolve) => {
          answer = resolve;
        });
      },
    });
    const run = worker.run();
    await waitFor(() => checks >= 1);
    const stopped = worker.stop();
    answer({ freeBytes: 200 * MiB, totalBytes: 1000 * MiB });
    await stopped;
    expect(await run).toMatchObject({ handled: 0, reason: 'stopped' });
  });

  it('takes no work below the limit, says why in readiness, and takes it once there is room', async () => {
    let space: FreeSpace = { freeBytes: 10 * MiB, totalBytes: 1000 * MiB };
    let checks = 0;
    const transport = createMemoryTransport([{ id: 'waits', steps: ['true'] }], { ended: true });
    const worker = workerWith(transport, {
      minFreeSpace: { bytes: 100 * MiB },
      diskCheckMs: 20,
      freeSpaceReader: async () => {
        checks++;
        return space;
      },
    });
    const started = new Promise<void>((resolve) => worker.once('started', resolve));
    const run = worker.run();
    await started;
    await waitFor(() => !worker.readiness().ready);
    const readiness = worker.readiness();
    expect(readiness.ready ? '' : readiness.reason).toMatch(
      /10\.0 MiB free .* below the 100\.0 MiB/,
    );
    // Several checks later it still has taken nothing.
    const seen = checks;
    await waitFor(() => checks >= seen + 3);
    expect(transport.settlements).toEqual([]);
    space = { freeBytes: 200 * MiB, totalBytes: 1000 * MiB };
    const summary = await run;
    expect(summary).toMatchObject({ handled: 1, reason: 'ended' });
    expect(transport.settlements[0]).toMatchObject({
      kind: 'complete',
      result: { status: 'success' },
    });
  });

  it('stops waiting for work when the space goes, and takes it again when it returns', async () => {
    let free = 500 * MiB;
    let checks = 0;
    const transport = createMemoryTransport([]);
    const worker = workerWith(transport, {
      minFreeSpace: { percent: 10 },
      diskCheckMs: 20,
      freeSpaceReader: async () => {
        checks++;
        return { freeBytes: free, totalBytes: 1000 * MiB };
      },
      idleTimeoutMs: 0,
    });
    const run = worker.run();
    await new Promise<void>((resolve) => worker.once('started', resolve));
    // The space goes while the worker waits in next(): the check aborts the wait.
    free = 50 * MiB;
    await waitFor(() => !worker.readiness().ready);
    transport.push({ id: 'pushed', steps: ['true'] });
    const seen = checks;
    await waitFor(() => checks >= seen + 3);
    expect(transport.settlements.filter((s) => s.kind === 'complete')).toEqual([]);
    free = 500 * MiB;
    await waitFor(() => worker.readiness().ready);
    await waitFor(() => transport.settlements.some((s) => s.kind === 'complete'));
    transport.end();
    await worker.stop();
    expect((await run).handled).toBe(1);
  });

  it('is not ready while its transport is not connected', async () => {
    let up = false;
    const memory = createMemoryTransport([]);
    const transport: Transport = {
      name: 'flaky',
      start: (c) => memory.start(c),
      next: (s) => memory.next(s),
      stop: () => memory.stop(),
      connected: () => up,
    };
    const worker = workerWith(transport);
    const run = worker.run();
    await new Promise<void>((resolve) => worker.once('started', resolve));
    const down = worker.readiness();
    expect(down.ready ? '' : down.reason).toBe('not connected to its broker (flaky)');
    up = true;
    expect(worker.readiness()).toEqual({ ready: true });
    memory.end();
    await run;
  });
});
