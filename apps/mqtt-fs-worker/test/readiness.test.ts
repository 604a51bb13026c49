import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { type Mosquitto, startMosquitto } from '@jw/testing/mosquitto';
import { type Spawned, spawnProcess } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));

let broker: Mosquitto;
let sb: Sandbox;
let worker: Spawned | undefined;

beforeEach(async () => {
  broker = await startMosquitto();
  sb = await createSandbox('jw-mqtt-ready-');
});
afterEach(async () => {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null)
    worker.kill('SIGKILL');
  await worker?.exited;
  worker = undefined;
  await broker.close();
  await sb.cleanup();
});

function healthPort(stderr: string): number {
  const line = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { healthPort?: number })
    .find((l) => l.healthPort !== undefined);
  return line!.healthPort!;
}

describe('mqtt-fs-worker readiness', () => {
  it('/readyz fails with a reason while the broker is away, and recovers with it', async () => {
    worker = spawnProcess(process.execPath, [BIN, '--health-port', '0', '--max-jobs', '0'], {
      cwd: sb.root,
      env: {
        PATH: process.env.PATH,
        MQTT_URL: broker.url,
        MQTT_JOBS_DIR: sb.jobsDir,
        MQTT_WORKSPACES_DIR: sb.workspacesDir,
        WORKER_ID: 'ready-1',
        LOG_FORMAT: 'json',
      },
    });
    await worker.waitForOutput('MQTT connected and subscribed');
    await worker.waitForOutput('health server on port');
    const port = healthPort(worker.stderr);
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    await waitFor(async () => (await readyz()).status === 200);

    await broker.stop();
    const away = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    expect(away.body.reason).toMatch(/not connected to its broker \(mqtt\)/);

    await broker.start();
    await waitFor(async () => (await readyz()).status === 200, 90_000);
    worker.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
  }, 180_000);
});
