import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { type Spawned, stopChild } from '@jw/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatedStep, jw, jwDone, NATS_WORKER, readManifestOf, startBinary } from './helpers.js';

let server: NatsServer;
let box: Sandbox;
let worker: Spawned;
let via: string;

beforeAll(async () => {
  server = await startNatsServer();
  box = await createSandbox('jw-client-nats-');
  via = server.url;
  worker = startBinary(NATS_WORKER, [
    '--url',
    server.url,
    '--jobs-dir',
    box.jobsDir,
    '--workspaces-dir',
    box.workspacesDir,
    '--id',
    'nats-worker-1',
    '--max-jobs',
    '0',
    '--idle-timeout',
    '0',
    '--heartbeat-interval',
    '1s',
    '--kill-grace',
    '1',
  ]);
  // The worker creates the stream; requests before that have nowhere to go.
  await worker.waitForOutput('listening for jobs', 60_000);
});

afterAll(async () => {
  if (worker) await stopChild(worker.child);
  await server?.close();
  await box?.cleanup();
});

describe('jw through NATS JetStream', () => {
  it('--follow prints step output while the step runs and the progress, then exits 0', async () => {
    const gate = path.join(box.root, 'gate-nats');
    const run = jw([
      'submit',
      '--steps',
      gatedStep(gate, 'nats-first', 'nats-second'),
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    await run.waitForOutput('nats-first', 60_000);
    expect(run.stdout).not.toContain('nats-second');
    await writeFile(gate, '');
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(run.stdout).toBe('nats-first\nnats-second\n');
    // Progress messages from the broker: every state, in order.
    expect(run.stderr).toMatch(/claimed by nats-worker-1[\s\S]*staging[\s\S]*running step 0/);
    expect(run.stderr).toMatch(/ success, exit 0/);
  });

  it('a failing job exits with its code', async () => {
    const { code, stdout, stderr } = await jwDone([
      'submit',
      '--steps',
      'echo going down; exit 3',
      '--id',
      'nats-fails',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    expect(code, stderr).toBe(3);
    expect(stdout).toBe('going down\n');
    expect(stderr).toMatch(/nats-fails failed, exit 3/);
    const status = await jwDone(['status', 'nats-fails', '--jobs-dir', box.jobsDir]);
    expect(status.stdout).toMatch(
      /^nats-fails: failed, exit 3, attempt 1, worker nats-worker-1 \(nats/,
    );
  });

  it('jw cancel reaches the worker running the job; jw workers lists it', async () => {
    const follower = jw([
      'submit',
      '--steps',
      'echo nats-sleeping; sleep 300',
      '--id',
      'nats-long',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    await follower.waitForOutput('nats-sleeping', 60_000);

    const workers = await jwDone(['workers', '--via', via, '--listen', '3s', '--json']);
    expect(workers.code).toBe(0);
    const list = JSON.parse(workers.stdout) as { workerId: string; activeJobs: string[] }[];
    expect(list).toEqual([
      expect.objectContaining({
        workerId: 'nats-worker-1',
        status: 'online',
        activeJobs: ['nats-long'],
      }),
    ]);

    const cancel = await jwDone(['cancel', 'nats-long', '--via', via]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stderr).toMatch(/cancelled by worker nats-worker-1/);
    const { code } = await follower.exited;
    const manifest = await readManifestOf(box, 'nats-long');
    expect(manifest.status).toBe('cancelled');
    expect(code).toBe(manifest.exitCode);
    expect(follower.stderr).toMatch(/nats-long cancelled/);

    // Nobody runs it any more: the cancel is sent, but no worker confirms.
    const again = await jwDone(['cancel', 'nats-long', '--via', via]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no worker stopped it/);
  });

  it('without a stream for the subject, says so with a hint', async () => {
    const { code, stderr } = await jwDone([
      'submit',
      '--steps',
      'true',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      `${server.url}?subject=other.pending`,
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^jw: error: no JetStream stream takes other\.pending .*\(hint: start a nats-fs-worker/,
    );
  });
});
