import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, waitFor } from '@jw/conformance';
import { createWorker, type JobEvent } from '@jw/core';
import { createClient } from 'redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRedisTransport } from '../src/index.js';
import { connectController } from './controller.js';
import { type RedisServer, startRedisServer } from './redis-server.js';

const CHILD = fileURLToPath(new URL('./fixtures/worker.mjs', import.meta.url));
const CLAIM_IDLE_MS = 2_000;

let server: RedisServer;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

it('takes over with XAUTOCLAIM the delivery of a worker killed mid-job, as attempt 2', async () => {
  const prefix = 'dead';
  const sandbox = await createSandbox('jw-redis-dead-');
  const controller = await connectController(server.socketPath, prefix);
  const listener = createClient({ socket: { path: server.socketPath, tls: false } });
  await listener.connect();
  let child: ChildProcess | undefined;
  try {
    const dir = await sandbox.makeJob('dw-1', { steps: ['sleep 60'] });
    const events: JobEvent[] = [];
    await listener.subscribe(`${prefix}:progress:dw-1`, (m) => events.push(JSON.parse(m)));
    const doomed = spawn(
      process.execPath,
      [CHILD, server.socketPath, prefix, sandbox.root, String(CLAIM_IDLE_MS)],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    child = doomed;
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      doomed.once('exit', (_code, signal) => resolve(signal)),
    );
    await controller.send(JSON.stringify({ id: 'dw-1' }));
    await waitFor(() => events.some((e) => e.state === 'running'), 30_000);
    doomed.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // Delivered to the dead worker's consumer, never acknowledged.
    const [held] = await controller.pending();
    expect(held?.consumer).toMatch(/^doomed-/);
    await writeFile(path.join(dir, 'job.json'), JSON.stringify({ steps: ['echo recovered'] }));

    const rescuer = createWorker({
      transport: createRedisTransport({
        socketPath: server.socketPath,
        prefix,
        claimIdleMs: CLAIM_IDLE_MS,
        blockMs: 200,
      }),
      jobsDir: sandbox.jobsDir,
      workspacesDir: sandbox.workspacesDir,
      workerId: 'rescuer',
      env: { PATH: process.env.PATH ?? '' },
      maxJobs: 1,
    });
    expect((await rescuer.run()).handled).toBe(1);
    expect(await waitFor(() => controller.lastResult('dw-1'))).toMatchObject({
      status: 'success',
      attempt: 2,
      workerId: 'rescuer',
    });
    expect(await sandbox.readLog('dw-1', 0)).toContain('recovered');
    expect(await controller.pending()).toEqual([]);
  } finally {
    child?.kill('SIGKILL');
    await listener.close();
    await controller.close();
    await sandbox.cleanup();
  }
});
