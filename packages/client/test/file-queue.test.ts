import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { submitJob } from '@jw/client';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import type { Spawned } from '@jw/testing/process';
import { stopChild } from '@jw/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FILE_WORKER,
  gatedStep,
  jw,
  jwDone,
  readManifestOf,
  STACK,
  startBinary,
} from './helpers.js';

let box: Sandbox;
let worker: Spawned;
let queueDir: string;
let via: string;

beforeAll(async () => {
  box = await createSandbox('jw-client-file-');
  queueDir = path.join(box.root, 'queue');
  via = `file:${queueDir}`;
  // A daemon (no --max-jobs): every test of this file goes through it.
  worker = startBinary(FILE_WORKER, [
    '--jobs-dir',
    box.jobsDir,
    '--workspaces-dir',
    box.workspacesDir,
    '--queue-dir',
    queueDir,
    '--poll-interval',
    '100',
    '--kill-grace',
    '1',
  ]);
  await worker.waitForOutput('worker started', 30_000);
});

afterAll(async () => {
  if (worker) await stopChild(worker.child);
  await box?.cleanup();
});

describe('jw submit through the file queue', () => {
  it('--follow prints step output while the step runs, then exits 0', async () => {
    const gate = path.join(box.root, 'gate-1');
    const run = jw([
      'submit',
      '--steps',
      gatedStep(gate, 'first-line', 'second-line'),
      'echo from-step-two',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    // The step is blocked on the gate: this output can only have come while it runs.
    await run.waitForOutput('first-line', 60_000);
    expect(run.stdout).not.toContain('second-line');
    await writeFile(gate, '');
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(run.stdout).toMatch(/first-line\nsecond-line\nfrom-step-two\n/);
    expect(run.stderr).toMatch(/running step 0/);
    expect(run.stderr).toMatch(/running step 1/);
    expect(run.stderr).toMatch(/ success, exit 0/);
  });

  it("copies a job dir (without its results/) and exits with the failing step's code", async () => {
    const source = path.join(box.root, 'local-job');
    await mkdir(path.join(source, 'results'), { recursive: true });
    await writeFile(path.join(source, 'results', 'old.txt'), 'stale');
    await writeFile(path.join(source, 'input.txt'), 'payload-42\n');
    await writeFile(
      path.join(source, 'job.json'),
      JSON.stringify({ steps: ['cat input.txt', 'echo about to fail; exit 3', 'echo never'] }),
    );
    const { code, stdout, stderr } = await jwDone([
      'submit',
      source,
      '--id',
      'copied-fails',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    expect(code).toBe(3);
    expect(stdout).toBe('payload-42\nabout to fail\n');
    expect(stderr).toMatch(/copied-fails failed, exit 3/);
    const results = await readdir(path.join(box.jobsDir, 'copied-fails', 'results'));
    expect(results).not.toContain('old.txt');
    expect((await readManifestOf(box, 'copied-fails')).status).toBe('failed');

    const status = await jwDone(['status', 'copied-fails', '--jobs-dir', box.jobsDir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^copied-fails: failed, exit 3/);
    expect(status.stdout).toMatch(/step 1 echo about to fail; exit 3: failed \(exit 3\)/);

    const logs = await jwDone(['logs', 'copied-fails', '--jobs-dir', box.jobsDir]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe('payload-42\nabout to fail\n');
  });

  it("--wait is quiet and exits with the job's code", async () => {
    const { code, stdout, stderr } = await jwDone([
      'submit',
      '--steps',
      'echo quiet; exit 7',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--wait',
    ]);
    expect(code).toBe(7);
    expect(stdout).toBe('');
    expect(stderr).toBe('');
  });

  it('jw cancel stops a running job: its follower exits non-zero and status says cancelled', async () => {
    const follower = jw([
      'submit',
      '--steps',
      'echo sleeping; sleep 300',
      '--id',
      'long-sleep',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    await follower.waitForOutput('sleeping', 60_000);
    const cancel = await jwDone(['cancel', 'long-sleep', '--via', via]);
    expect(cancel.code).toBe(0);
    expect(cancel.stderr).toMatch(/cancel for long-sleep sent/);
    const { code } = await follower.exited;
    const manifest = await readManifestOf(box, 'long-sleep');
    expect(manifest.status).toBe('cancelled');
    expect(code).toBe(manifest.exitCode);
    expect(code).not.toBe(0);
    const status = await jwDone(['status', 'long-sleep', '--jobs-dir', box.jobsDir]);
    expect(status.stdout).toMatch(/^long-sleep: cancelled/);
  });

  it('Ctrl-C without a terminal stops following; the job goes on', async () => {
    const gate = path.join(box.root, 'gate-int');
    const follower = jw([
      'submit',
      '--steps',
      gatedStep(gate, 'waiting-for-gate', 'gate-opened'),
      '--id',
      'interrupted',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      via,
      '--follow',
    ]);
    await follower.waitForOutput('waiting-for-gate', 60_000);
    follower.kill('SIGINT');
    const { code } = await follower.exited;
    expect(code).toBe(130);
    expect(follower.stderr).toMatch(/stopped following; interrupted goes on/);
    expect((await readManifestOf(box, 'interrupted')).status).toBe('running');
    // Someone else can pick the logs up where the follower left.
    const logs = jw(['logs', 'interrupted', '--jobs-dir', box.jobsDir, '--follow']);
    await logs.waitForOutput('waiting-for-gate', 30_000);
    await writeFile(gate, '');
    expect((await logs.exited).code).toBe(0);
    expect(logs.stdout).toBe('waiting-for-gate\ngate-opened\n');
  });

  it('--timeout with no worker taking jobs exits 124 with a hint', async () => {
    const idle = path.join(box.root, 'idle-queue');
    await mkdir(idle);
    const { code, stderr } = await jwDone([
      'submit',
      '--steps',
      'echo hi',
      '--jobs-dir',
      box.jobsDir,
      '--via',
      `file:${idle}`,
      '--wait',
      '--timeout',
      '2s',
    ]);
    expect(code).toBe(124);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(
      /no result for job job-[\w-]+ within 2 s .*hint: no worker has started it/,
    );
  });

  it("jw workers reads the queue's workers/ heartbeats", async () => {
    const { code, stdout } = await jwDone(['workers', '--via', via, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual([
      expect.objectContaining({
        workerId: 'worker-01',
        status: 'online',
        state: 'idle',
        transport: 'file',
        pid: worker.child.pid,
        concurrency: 1,
        activeJobs: [],
      }),
    ]);
    const table = await jwDone(['workers', '--via', via]);
    expect(table.stdout).toMatch(/worker-01\s+online\s+\S+:\d+\s+idle\s/);
  });

  it('errors are one line with a hint, never a stack', async () => {
    const cases = [
      ['submit', '--steps', 'true', '--jobs-dir', box.jobsDir, '--via', 'nats://127.0.0.1:1'],
      ['submit', '--steps', 'true', '--jobs-dir', path.join(box.root, 'nope'), '--via', via],
      ['submit', '--steps', 'true', '--jobs-dir', box.jobsDir, '--via', 'gopher://x'],
      ['status', 'no-such-job', '--jobs-dir', box.jobsDir],
      ['workers', '--via', `file:${path.join(box.root, 'no-queue')}`],
    ];
    for (const args of cases) {
      const { code, stderr } = await jwDone(args);
      expect(code, args.join(' ')).toBe(1);
      expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
      expect(stderr).toMatch(/^jw: error: .+ \(hint: .+\)$/m);
      expect(stderr).not.toMatch(STACK);
    }
    const usage = await jwDone(['submit', '--steps', 'true']);
    expect(usage.code).toBe(2);
  });
});

describe('the library through the file queue', () => {
  it('submitJob gives the result, the logs by step and the progress events', async () => {
    const gate = path.join(box.root, 'gate-lib');
    const handle = await submitJob({
      via,
      jobsDir: box.jobsDir,
      steps: [
        'echo one',
        `echo "40 compiling" >> "$JW_PROGRESS"; ${gatedStep(gate, 'two', 'three')}`,
      ],
      env: { GREETING: 'hi' },
    });
    expect(handle.id).toMatch(/^job-\d{8}-\d{6}-[0-9a-f]{6}$/);
    const chunks: { step: number; chunk: string }[] = [];
    const states: string[] = [];
    const [result] = await Promise.all([
      handle.result({ timeoutMs: 60_000 }),
      (async () => {
        for await (const c of handle.logs()) chunks.push({ step: c.step, chunk: c.chunk });
      })(),
      (async () => {
        for await (const e of handle.events()) {
          states.push(`${e.state}${e.step ? e.step.index : ''}`);
          if (e.progress) states.push(`${e.progress.percent}% ${e.progress.message}`);
          // Step 1 waits until its progress report has been seen as an event.
          if (e.progress?.percent === 40) await writeFile(gate, '');
        }
      })(),
    ]);
    expect(result).toMatchObject({ id: handle.id, status: 'success', exitCode: 0 });
    const byStep = (n: number) =>
      chunks
        .filter((c) => c.step === n)
        .map((c) => c.chunk)
        .join('');
    expect(byStep(0)).toBe('one\n');
    expect(byStep(1)).toBe('two\nthree\n');
    expect(states).toContain('running0');
    expect(states).toContain('running1');
    expect(states).toContain('40% compiling');
    await waitFor(async () => (await readManifestOf(box, handle.id)).status === 'success');
  });
});
