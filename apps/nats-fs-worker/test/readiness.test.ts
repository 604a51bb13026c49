import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import type { Spawned } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queue, ready, startWorker } from './helpers.js';

let box: Sandbox;
let server: NatsServer;
let worker: Spawned | undefined;

beforeEach(async () => {
  box = await createSandbox('jw-nats-ready-');
  server = await startNatsServer();
});

afterEach(async () => {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null)
    worker.kill('SIGKILL');
  await worker?.exited;
  worker = undefined;
  await server.close();
  await box.cleanup();
});

function healthPort(stderr: string): number {
  const line = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { healthPort?: number })
    .find((l) => l.healthPort !== undefined);
  return line!.healthPort!;
}

describe('nats-fs-worker readiness', () => {
  it('/readyz fails with a reason while the NATS server is away, and recovers with it', async () => {
    const q = queue('ready');
    worker = startWorker([
      '-u',
      server.url,
      '-j',
      box.jobsDir,
      '-w',
      box.workspacesDir,
      ...q.flags,
      '--health-port',
      '0',
      '--reconnect-wait',
      '200ms',
    ]);
    await ready(worker);
    await worker.waitForOutput('health server on port');
    const port = healthPort(worker.stderr);
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    await waitFor(async () => (await readyz()).status === 200);

    await server.stop();
    const away = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    expect(away.body.reason).toMatch(/not connected to its broker \(nats\)/);

    await server.start();
    await waitFor(async () => (await readyz()).status === 200);
    worker.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
  }, 180_000);
});
