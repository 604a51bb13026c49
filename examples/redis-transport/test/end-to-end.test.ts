import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox, waitFor } from '@jw/conformance';
import { createWorker, type JobEvent, type ResultMessage, type Transport } from '@jw/core';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { createRedisTransport } from '../src/index.js';
import { type Client, type Controller, connectController } from './controller.js';
import { type RedisServer, startRedisServer } from './redis-server.js';

let server: RedisServer;
let sandbox: Sandbox;
let controller: Controller;
let listener: Client;
let prefix = '';
let n = 0;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});
beforeEach(async () => {
  prefix = `e2e${++n}`;
  sandbox = await createSandbox('jw-redis-e2e-');
  controller = await connectController(server.socketPath, prefix);
  listener = createClient({ socket: { path: server.socketPath, tls: false } });
  await listener.connect();
});
afterEach(async () => {
  await listener.close();
  await controller.close();
  await sandbox.cleanup();
});

const worker = (workerId: string) =>
  createWorker({
    transport: createRedisTransport({ socketPath: server.socketPath, prefix, blockMs: 500 }),
    jobsDir: sandbox.jobsDir,
    workspacesDir: sandbox.workspacesDir,
    workerId,
    env: { PATH: process.env.PATH ?? '' },
    maxJobs: 1,
    killGraceMs: 500,
  });

/** Progress events of one job as a controller sees them (pub/sub). */
async function followProgress(id: string): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  await listener.subscribe(`${prefix}:progress:${id}`, (m) => events.push(JSON.parse(m)));
  return events;
}

/** Blocks on the job's result stream the way a controller waits for its result. */
async function awaitResult(id: string): Promise<ResultMessage> {
  const reader = controller.client.duplicate();
  await reader.connect();
  try {
    const reply = (await reader.xRead({ key: `${prefix}:results:${id}`, id: '0' }, { BLOCK: 0 })) as
      | { messages: { message: Record<string, string> }[] }[]
      | null;
    return JSON.parse(reply![0]!.messages[0]!.message.body!) as ResultMessage;
  } finally {
    await reader.close();
  }
}

it('runs a job sent on the stream, publishes progress and the result, and acknowledges it', async () => {
  await sandbox.makeJob('e2e-build', {
    steps: ['echo "built $JW_JOB_ID" > app.txt', 'cat app.txt'],
  });
  const events = await followProgress('e2e-build');
  const w = worker('w-e2e');
  const run = w.run();
  const result = awaitResult('e2e-build');
  await controller.send(JSON.stringify({ id: 'e2e-build' }));
  expect(await result).toMatchObject({
    id: 'e2e-build',
    status: 'success',
    exitCode: 0,
    manifestFile: 'results/result.json',
    workerId: 'w-e2e',
  });
  expect((await run).handled).toBe(1);
  const manifest = await sandbox.readResult('e2e-build');
  expect(manifest.worker.transport).toBe('redis');
  expect(manifest.artifacts.map((a: { path: string }) => a.path)).toEqual(['app.txt']);
  expect(
    await readFile(path.join(sandbox.jobsDir, 'e2e-build', 'results', 'app.txt'), 'utf8'),
  ).toBe('built e2e-build\n');
  expect(await sandbox.readLog('e2e-build', 1)).toContain('built e2e-build');
  await waitFor(() => events.some((e) => e.state === 'success'));
  const states = events.map((e) => e.state);
  expect(states).toEqual(expect.arrayContaining(['claimed', 'running', 'success']));
  expect(states.indexOf('claimed')).toBeLessThan(states.indexOf('running'));
  expect(await controller.pending()).toEqual([]);
});

it('cancels a running job on a message on its cancel channel', async () => {
  await sandbox.makeJob('e2e-cancel', { steps: ['sleep 30'] });
  const events = await followProgress('e2e-cancel');
  const w = worker('w-cancel');
  const run = w.run();
  await controller.send(JSON.stringify({ id: 'e2e-cancel' }));
  await waitFor(() => events.some((e) => e.state === 'running'));
  await controller.client.publish(`${prefix}:cancel:e2e-cancel`, 'operator asked');
  expect(await awaitResult('e2e-cancel')).toMatchObject({ status: 'cancelled' });
  await run;
  expect(await controller.pending()).toEqual([]);
});

it('keeps a delivery alive past the claim idle time while its job runs: a second worker never takes it', async () => {
  const runs = path.join(sandbox.root, 'runs.txt');
  await sandbox.makeJob('e2e-long', { steps: [`echo $JW_JOB_ID >> ${runs}`, 'sleep 4'] });
  let deliveries = 0;
  const transport = (): Transport => {
    const inner = createRedisTransport({
      socketPath: server.socketPath,
      prefix,
      claimIdleMs: 1_000,
      blockMs: 200,
    });
    return {
      name: inner.name,
      start: (context) => inner.start(context),
      next: async (signal) => {
        const delivery = await inner.next(signal);
        if (delivery) deliveries++;
        return delivery;
      },
      stop: () => inner.stop(),
    };
  };
  const options = {
    jobsDir: sandbox.jobsDir,
    workspacesDir: sandbox.workspacesDir,
    env: { PATH: process.env.PATH ?? '' },
  };
  // Both stay up longer than the job: a delivery that went idle would be taken by the other.
  const a = createWorker({
    ...options,
    transport: transport(),
    workerId: 'wa',
    idleTimeoutMs: 6_000,
  });
  const b = createWorker({
    ...options,
    transport: transport(),
    workerId: 'wb',
    idleTimeoutMs: 6_000,
  });
  const both = Promise.all([a.run(), b.run()]);
  await controller.send(JSON.stringify({ id: 'e2e-long' }));
  const [sa, sb] = await both;
  expect(sa.handled + sb.handled).toBe(1);
  expect(deliveries).toBe(1);
  expect(sa.rejected + sb.rejected).toBe(0);
  expect(await readFile(runs, 'utf8')).toBe('e2e-long\n');
  expect(await controller.lastResult('e2e-long')).toMatchObject({ status: 'success', attempt: 1 });
  expect(await controller.pending()).toEqual([]);
});
