import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collect, consumerState, queue, ready, startWorker, submit } from './helpers.js';

let server: NatsServer;
let nc: NatsConnection;
let box: Sandbox;

beforeAll(async () => {
  // Larger than the worker's 1 MiB request limit, so an oversized request can reach it.
  server = await startNatsServer({ maxPayload: 4 * 1024 * 1024 });
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.close();
});

beforeEach(async () => {
  box = await createSandbox('jw-nats-app-');
});

afterEach(async () => {
  await box.cleanup();
});

function dirs(): string[] {
  return ['-u', server.url, '-j', box.jobsDir, '-w', box.workspacesDir];
}

describe('nats-fs-worker', () => {
  it('runs the seed README example: creates stream and consumer, takes the job, exits 0', async () => {
    await box.makeJob('job_2026_01', { steps: ['echo built > app.txt', 'echo second step'] });
    const results = await collect(nc, 'jobs.results.>');
    const progress = await collect(nc, 'jobs.progress.job_2026_01');
    // Flags verbatim from the seed README; the shared folders come from its env variables.
    const worker = startWorker(
      ['--id', 'worker-pool', '--stream', 'JOBS', '--input-subject', 'jobs.pending'],
      {
        env: {
          NATS_URL: server.url,
          NATS_JOBS_DIR: box.jobsDir,
          NATS_WORKSPACES_DIR: box.workspacesDir,
        },
      },
    );
    await ready(worker);
    await submit(nc, 'jobs.pending', { id: 'job_2026_01' });
    expect((await worker.exited).code).toBe(0);

    const [message] = await results.waitFor(1);
    expect(message!.subject).toBe('jobs.results.job_2026_01');
    expect(message!.json()).toMatchObject({
      id: 'job_2026_01',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
    });
    const manifest = await box.readResult('job_2026_01');
    expect(manifest).toMatchObject({ status: 'success', attempt: 1 });
    expect(manifest.worker).toMatchObject({ id: 'worker-pool', transport: 'nats' });
    expect(await readFile(path.join(box.jobsDir, 'job_2026_01/results/app.txt'), 'utf8')).toBe(
      'built\n',
    );
    expect(await box.readLog('job_2026_01', 1)).toContain('second step');
    const states = progress.json<{ state: string }>().map((e) => e.state);
    expect(states).toEqual(
      expect.arrayContaining(['claimed', 'staging', 'running', 'syncing', 'success']),
    );
    const consumer = await consumerState(nc, 'JOBS', 'worker-pool');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
  });

  it('runs the dry run of the seed README without any broker', async () => {
    const cwd = await mkdtemp(path.join(tmpdir(), 'jw-nats-dry-'));
    try {
      await writeFile(
        path.join(cwd, 'test-payload.json'),
        JSON.stringify({ id: 'dry-run-test', steps: ["echo 'Testing environment'"] }),
      );
      const worker = startWorker(['--dry-run'], { cwd, env: { NATS_URL: 'nats://127.0.0.1:1' } });
      expect((await worker.exited).code).toBe(0);
      expect(JSON.parse(worker.stdout)).toMatchObject({ id: 'dry-run-test', status: 'success' });
      expect(
        await readFile(path.join(cwd, 'jobs/dry-run-test/results/step_0.log'), 'utf8'),
      ).toContain('Testing environment');
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('exits 0 after the idle time-out with nothing to do', async () => {
    const q = queue('idle');
    const worker = startWorker([...dirs(), ...q.flags, '--id', 'idler', '--idle-timeout', '1s']);
    expect((await worker.exited).code).toBe(0);
    expect(worker.stdout + worker.stderr).toContain('listening for jobs');
  });

  it('publishes on the bare output subject with --flat-results and NATS_FLAT_RESULTS', async () => {
    const q = queue('flat');
    await box.makeJob('f1', { steps: ['true'] });
    await box.makeJob('f2', { steps: ['true'] });
    const results = await collect(nc, `${q.output}.>`);
    const flat = await collect(nc, q.output);
    const a = startWorker([...dirs(), ...q.flags, '--id', 'flat', '--flat-results']);
    await ready(a);
    await submit(nc, q.input, { id: 'f1' });
    expect((await a.exited).code).toBe(0);
    const b = startWorker([...dirs(), ...q.flags, '--id', 'flat'], {
      env: { NATS_FLAT_RESULTS: 'true' },
    });
    await ready(b);
    await submit(nc, q.input, { id: 'f2' });
    expect((await b.exited).code).toBe(0);
    expect((await flat.waitFor(2)).map((m) => m.json<{ id: string }>().id)).toEqual(['f1', 'f2']);
    expect(results.messages).toHaveLength(0);
  });

  it('dead-letters bad requests, answers the ones with an id, and keeps going', async () => {
    const q = queue('bad');
    await box.makeJob('good', { steps: ['echo ok'] });
    const results = await collect(nc, `${q.output}.>`);
    const worker = startWorker([...dirs(), ...q.flags, '--id', 'bad']);
    await ready(worker);
    const huge = JSON.stringify({ id: 'huge', junk: 'x'.repeat(1.5 * 1024 * 1024) });
    await submit(
      nc,
      q.input,
      'this is not JSON',
      { steps: ['echo no id'] },
      { id: '../outside' },
      huge,
      { id: 'good' },
    );
    // One-shot: bad requests are not jobs, so it goes on to the good one and exits after it.
    expect((await worker.exited).code).toBe(0);

    const byId = Object.fromEntries(results.json<{ id: string }>().map((r) => [r.id, r]));
    expect(byId.good).toMatchObject({ status: 'success' });
    expect(byId.huge).toMatchObject({ status: 'error', errorCode: 'BAD_REQUEST' });
    expect(Object.keys(byId).sort()).toEqual(['good', 'huge']);

    const jsm = await jetstreamManager(nc);
    const dead = [];
    for (let seq = 1; seq <= 12; seq++) {
      const m = await jsm.streams.getMessage(q.stream, { seq }).catch(() => null);
      if (m?.subject === q.dead) dead.push(m);
    }
    expect(dead.map((m) => m.header.get('Jw-Error-Code'))).toEqual(Array(4).fill('BAD_REQUEST'));
    expect(Buffer.from(dead[0]!.data).toString()).toBe('this is not JSON');
    expect(dead[2]!.json()).toEqual({ id: '../outside' });
    expect(dead[3]!.header.get('Jw-Job-Id')).toBe('huge');
    expect(dead[3]!.data.byteLength).toBe(Buffer.byteLength(huge));
    await expect(stat(path.join(box.root, 'outside'))).rejects.toThrow();
    const consumer = await consumerState(nc, q.stream, 'bad');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
    expect(consumer.num_redelivered).toBe(0);
  });

  it('cancels a running job on jobs.cancel.{id} and acks it as handled', async () => {
    const q = queue('cancel');
    await box.makeJob('slow', { steps: ['echo started; sleep 30'] });
    const results = await collect(nc, `${q.output}.slow`);
    const progress = await collect(nc, `${q.progress}.slow`);
    const worker = startWorker([...dirs(), ...q.flags, '--id', 'cancel']);
    await ready(worker);
    await submit(nc, q.input, { id: 'slow' });
    await waitFor(() => box.readLog('slow', 0).then((log) => log.includes('started')));
    // Progress events are published without holding up the job: wait for the one of the step.
    await waitFor(() => progress.json<{ state: string }>().some((e) => e.state === 'running'));
    const reply = await nc.request(`${q.cancel}.slow`, JSON.stringify({ reason: 'test' }), {
      timeout: 20_000,
    });
    expect(reply.json()).toMatchObject({ id: 'slow', cancelled: true });
    expect((await worker.exited).code).toBe(0);
    expect((await results.waitFor(1))[0]!.json()).toMatchObject({
      status: 'cancelled',
      errorCode: 'CANCELLED',
    });
    expect((await consumerState(nc, q.stream, 'cancel')).num_ack_pending).toBe(0);
  });

  it('sends heartbeats on workers.{id}.status and says offline on exit', async () => {
    const q = queue('beat');
    const status = await collect(nc, 'workers.beater.status');
    const worker = startWorker([...dirs(), ...q.flags, '--id', 'beater', '--idle-timeout', '1s']);
    expect((await worker.exited).code).toBe(0);
    const states = status.json<{ status: string; workerId: string }>();
    expect(states[0]).toMatchObject({ workerId: 'beater', status: 'online' });
    expect(states.at(-1)).toMatchObject({ status: 'offline' });
  });

  it('exits 0 at once on SIGTERM while idle and leaves later jobs to others', async () => {
    const q = queue('quit');
    await box.makeJob('after', { steps: ['true'] });
    const results = await collect(nc, `${q.output}.after`);
    const a = startWorker([...dirs(), ...q.flags, '--id', 'quit']);
    await ready(a);
    const t0 = Date.now();
    a.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    // Not after the open pull's 5 s expiry: the abort ends it (slack for a busy machine).
    expect(Date.now() - t0).toBeLessThan(4_500);
    const b = startWorker([...dirs(), ...q.flags, '--id', 'quit']);
    await ready(b);
    await submit(nc, q.input, { id: 'after' });
    expect((await b.exited).code).toBe(0);
    expect((await results.waitFor(1))[0]!.json()).toMatchObject({ id: 'after', status: 'success' });
    const consumer = await consumerState(nc, q.stream, 'quit');
    expect(consumer.num_redelivered).toBe(0);
  });

  it('takes the seed’s short flags; -o ends a job that runs too long as timeout, acked', async () => {
    const q = queue('short');
    await box.makeJob('sleepy', { steps: ['sleep 30'] });
    const results = await collect(nc, `${q.output}.sleepy`);
    const args = ['-u', server.url, '-j', box.jobsDir, '-w', box.workspacesDir, '-i', 'short'];
    const w = startWorker([...args, '-s', q.stream, '-k', q.input, '-r', q.output, '-o', '0.03']);
    await ready(w);
    await submit(nc, q.input, { id: 'sleepy' });
    expect((await w.exited).code).toBe(0);
    expect((await results.waitFor(1))[0]!.json()).toMatchObject({
      id: 'sleepy',
      status: 'timeout',
      errorCode: 'TIMEOUT',
    });
    expect((await consumerState(nc, q.stream, 'short')).num_ack_pending).toBe(0);

    // JOB_TIMEOUT is the variable of the same setting.
    await box.makeJob('sleepy2', { steps: ['sleep 30'] });
    const more = await collect(nc, `${q.output}.sleepy2`);
    const v = startWorker([...args, '-s', q.stream, '-k', q.input, '-r', q.output], {
      env: { JOB_TIMEOUT: '2s' },
    });
    await ready(v);
    await submit(nc, q.input, { id: 'sleepy2' });
    expect((await v.exited).code).toBe(0);
    expect((await more.waitFor(1))[0]!.json()).toMatchObject({ status: 'timeout' });
  });

  it('exits 2 on bad settings', async () => {
    const worker = startWorker([...dirs(), '--ack-wait', 'soon']);
    expect((await worker.exited).code).toBe(2);
    const maxDeliver = startWorker([...dirs(), '--max-deliver', '0']);
    expect((await maxDeliver.exited).code).toBe(2);
  });
});
