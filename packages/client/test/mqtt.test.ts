import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { type Mosquitto, startMosquitto } from '@jw/testing/mosquitto';
import { type Spawned, stopChild } from '@jw/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatedStep, jw, jwDone, MQTT_WORKER, readManifestOf, startBinary } from './helpers.js';

let broker: Mosquitto;
let box: Sandbox;
let worker: Spawned;
let via: string;

beforeAll(async () => {
  broker = await startMosquitto();
  box = await createSandbox('jw-client-mqtt-');
  via = broker.url;
  worker = startBinary(MQTT_WORKER, [
    '--url',
    broker.url,
    '--jobs-dir',
    box.jobsDir,
    '--workspaces-dir',
    box.workspacesDir,
    '--id',
    'mqtt-worker-1',
    '--max-jobs',
    '0',
    '--idle-timeout',
    '0',
    '--kill-grace',
    '1',
  ]);
  // Subscribed: a request published after this reaches it.
  await worker.waitForOutput('MQTT connected and subscribed', 60_000);
});

afterAll(async () => {
  if (worker) await stopChild(worker.child);
  await broker?.close();
  await box?.cleanup();
});

describe('jw through MQTT', () => {
  it('--follow prints step output live and the progress, exits 0; jw workers reads the retained status', async () => {
    const gate = path.join(box.root, 'gate-mqtt');
    const run = jw([
      'submit',
      '--steps',
      gatedStep(gate, 'mqtt-first', 'mqtt-second'),
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    await run.waitForOutput('mqtt-first', 60_000);
    expect(run.stdout).not.toContain('mqtt-second');

    const workers = await jwDone(['workers', '--via', via]);
    expect(workers.code, workers.stderr).toBe(0);
    expect(workers.stdout).toMatch(/^WORKER\s+STATUS/);
    expect(workers.stdout).toMatch(/mqtt-worker-1\s+online\s+\S+:\d+\s/);

    await writeFile(gate, '');
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(run.stdout).toBe('mqtt-first\nmqtt-second\n');
    expect(run.stderr).toMatch(/claimed by mqtt-worker-1[\s\S]*running step 0/);
  });

  it("a failing job exits with its code; a cancelled one with the cancel's", async () => {
    const failed = await jwDone([
      'submit',
      '--steps',
      'exit 3',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--wait',
    ]);
    expect(failed.code, failed.stderr).toBe(3);

    const follower = jw([
      'submit',
      '--steps',
      'echo mqtt-sleeping; sleep 300',
      '--id',
      'mqtt-long',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    await follower.waitForOutput('mqtt-sleeping', 60_000);
    const cancel = await jwDone(['cancel', 'mqtt-long', '--via', via]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const { code } = await follower.exited;
    const manifest = await readManifestOf(box, 'mqtt-long');
    expect(manifest.status).toBe('cancelled');
    expect(code).toBe(manifest.exitCode);
  });
});
