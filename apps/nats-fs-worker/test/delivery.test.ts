import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Gate, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import type { Spawned } from '@jw/testing/process';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collect, consumerState, queue, ready, startWorker, submit } from './helpers.js';

let server: NatsServer;
let nc: NatsConnection;
let box: Sandbox;
const running: Spawned[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
});

afterAll(async () => {
  await nc?.close();
  await server?.close();
});

beforeEach(async () => {
  box = await createSandbox('jw-nats-delivery-');
});

afterEach(async () => {
  for (const w of running.splice(0)) if (w.child.exitCode === null) w.kill('SIGKILL');
  await box.cleanup();
});

function worker(q: ReturnType<typeof queue>, id: string, ...args: string[]): Spawned {
  const w = startWorker([
    '-u',
    server.url,
    '-j',
    box.jobsDir,
    '-w',
    box.workspacesDir,
    ...q.flags,
    '--id',
    id,
    ...args,
  ]);
  running.push(w);
  return w;
}

/**
 * A step that records each run of its job in a shared file, one line per run,
 * then sleeps or waits for a gate the test opens (so the test, not the machine's
 * speed, decides whether the job is still running at a given point).
 */
function countedJob(then: number | Gate = 0) {
  const runs = path.join(box.root, 'runs.log');
  const rest = typeof then === 'number' ? (then ? `; sleep ${then}` : '') : `; ${then.wait}`;
  return { steps: [`echo "$JW_JOB_ID" >> ${runs}${rest}`] };
}

async function runsPerJob(): Promise<Record<string, number>> {
  const text = await readFile(path.join(box.root, 'runs.log'), 'utf8').catch(() => '');
  const counts: Record<string, number> = {};
  for (const id of text.split('\n').filter(Boolean)) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}

describe('delivery semantics', () => {
  it('five competing one-shot workers with one id run each of 30 jobs exactly once', async () => {
    const q = queue('compete');
    // Each job costs a worker start (a node process): the count keeps that affordable on a busy machine.
    const ids = Array.from({ length: 30 }, (_, i) => `job-${i}`);
    for (const id of ids) await box.makeJob(id, countedJob());
    const results = await collect(nc, `${q.output}.>`);
    // Create stream and consumer first so the jobs are stored before the pool starts.
    const first = worker(q, 'pool', '--idle-timeout', '3s');
    await ready(first);
    await first.exited;
    await submit(nc, q.input, ...ids.map((id) => ({ id })));

    // Like `restart: always`: each slot starts a fresh one-shot worker until the queue is drained.
    const exits: number[] = [];
    const slot = async () => {
      for (;;) {
        const w = worker(q, 'pool', '--idle-timeout', '3s');
        const { code } = await w.exited;
        exits.push(code ?? -1);
        if (/"reason":"idle"/.test(w.stdout + w.stderr)) return;
      }
    };
    await Promise.all(Array.from({ length: 5 }, slot));

    expect(exits.every((c) => c === 0)).toBe(true);
    const runs = await runsPerJob();
    expect(Object.keys(runs).sort()).toEqual([...ids].sort());
    expect(Object.values(runs).every((n) => n === 1)).toBe(true);
    await results.waitFor(30);
    const got = results.json<{ id: string; status: string; replayed?: boolean }>();
    expect(got).toHaveLength(30);
    expect(new Set(got.map((r) => r.id)).size).toBe(30);
    expect(got.every((r) => r.status === 'success' && !r.replayed)).toBe(true);
    const consumer = await consumerState(nc, q.stream, 'pool');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
    expect(consumer.num_redelivered).toBe(0);
  }, 600_000);

  it('with --concurrency 2 holds two messages and takes a third only when a slot frees', async () => {
    const q = queue('pair');
    const go = gate(box.root);
    for (const id of ['p1', 'p2', 'p3']) await box.makeJob(id, countedJob(go));
    const results = await collect(nc, `${q.output}.>`);
    const a = worker(q, 'pair', '--concurrency', '2', '--max-jobs', '3');
    await ready(a);
    await submit(nc, q.input, { id: 'p1' }, { id: 'p2' }, { id: 'p3' });
    await waitFor(async () => Object.keys(await runsPerJob()).length === 2);
    const during = await consumerState(nc, q.stream, 'pair');
    expect(during.num_ack_pending).toBe(2);
    expect(during.num_pending).toBe(1);
    await go.open();
    expect((await a.exited).code).toBe(0);
    // The third is taken only when a slot frees up.
    expect(results.json().map((r) => r.id)).toHaveLength(3);
    expect(await runsPerJob()).toEqual({ p1: 1, p2: 1, p3: 1 });
    const after = await consumerState(nc, q.stream, 'pair');
    expect(after.num_ack_pending).toBe(0);
    expect(after.num_pending).toBe(0);
  });

  it('does not redeliver a job that runs longer than the ack wait', async () => {
    const q = queue('long');
    // Over two ack waits long; in-progress acks every 1 s leave room for a busy machine.
    await box.makeJob('long', countedJob(8));
    const results = await collect(nc, `${q.output}.>`);
    const a = worker(q, 'long', '--ack-wait', '3s');
    await ready(a);
    await submit(nc, q.input, { id: 'long' });
    await waitFor(async () => (await runsPerJob()).long === 1);
    // A competitor on the same consumer all along: it would get the job on any redelivery.
    const b = worker(q, 'long', '--ack-wait', '3s', '--idle-timeout', '9s');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    expect(b.stdout + b.stderr).not.toContain('job received');
    expect(await runsPerJob()).toEqual({ long: 1 });
    expect(results.json()).toEqual([
      expect.objectContaining({ id: 'long', status: 'success', attempt: 1 }),
    ]);
    const consumer = await consumerState(nc, q.stream, 'long');
    expect(consumer.num_redelivered).toBe(0);
    expect(consumer.num_ack_pending).toBe(0);
  }, 60_000);

  it('a job of a worker killed with -9 is completed by another, attempt 2, one final result', async () => {
    const q = queue('kill');
    const go = gate(box.root);
    await box.makeJob('victim', countedJob(go));
    const results = await collect(nc, `${q.output}.>`);
    const a = worker(q, 'kill', '--ack-wait', '2s');
    await ready(a);
    await submit(nc, q.input, { id: 'victim' });
    await waitFor(async () => (await runsPerJob()).victim === 1);
    const b = worker(q, 'kill', '--ack-wait', '2s', '--idle-timeout', '20s');
    await ready(b);
    a.kill('SIGKILL');
    expect((await a.exited).signal).toBe('SIGKILL');
    await go.open();
    expect((await b.exited).code).toBe(0);

    expect(await runsPerJob()).toEqual({ victim: 2 });
    const manifest = await box.readResult('victim');
    expect(manifest).toMatchObject({ status: 'success', attempt: 2 });
    expect(results.json()).toEqual([
      expect.objectContaining({ id: 'victim', status: 'success', attempt: 2 }),
    ]);
    // Nothing left to deliver, so no second result can follow.
    const consumer = await consumerState(nc, q.stream, 'kill');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
  }, 60_000);

  it('SIGTERM mid-job gives the job back at once and another worker takes it', async () => {
    const q = queue('term');
    await box.makeJob('handover', countedJob(30));
    const results = await collect(nc, `${q.output}.>`);
    // A 60 s ack wait: a pickup within 25 s can only come from the nak, never from an expiry.
    const a = worker(q, 'term', '--grace-period', '1s', '--ack-wait', '60s');
    await ready(a);
    await submit(nc, q.input, { id: 'handover' });
    await waitFor(async () => (await runsPerJob()).handover === 1);
    await box.makeJob('handover', countedJob(0));
    const b = worker(q, 'term', '--idle-timeout', '40s', '--ack-wait', '60s');
    await ready(b);
    const t0 = Date.now();
    a.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(25_000);
    expect(await runsPerJob()).toEqual({ handover: 2 });
    expect(results.json()).toEqual([
      expect.objectContaining({ id: 'handover', status: 'success', attempt: 2 }),
    ]);
    expect((await consumerState(nc, q.stream, 'term')).num_ack_pending).toBe(0);
  }, 60_000);

  it('SIGTERM lets a job that ends within the grace period finish and acks it', async () => {
    const q = queue('grace');
    await box.makeJob('short', countedJob(2));
    const results = await collect(nc, `${q.output}.>`);
    const a = worker(q, 'grace', '--grace-period', '20s');
    await ready(a);
    await submit(nc, q.input, { id: 'short' });
    await waitFor(async () => (await runsPerJob()).short === 1);
    a.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect(results.json()).toEqual([
      expect.objectContaining({ id: 'short', status: 'success', attempt: 1 }),
    ]);
    const consumer = await consumerState(nc, q.stream, 'grace');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
  });

  it('finishes a job across a server restart and publishes its result once', async () => {
    const q = queue('restart');
    const jsm = await jetstreamManager(nc);
    // Keep results in a stream: the test's own subscription is down while the server is.
    await jsm.streams.add({ name: 'RESTART_RESULTS', subjects: [`${q.output}.>`] });
    const go = gate(box.root);
    await box.makeJob('survivor', countedJob(go));
    const a = worker(q, 'restart', '--ack-wait', '2s', '--reconnect-wait', '0.2s');
    await ready(a);
    await submit(nc, q.input, { id: 'survivor' });
    await waitFor(async () => (await runsPerJob()).survivor === 1);
    await server.stop();
    await server.start();
    // The job ends only after the restart: it runs across it whatever the machine's speed.
    await go.open();
    expect((await a.exited).code).toBe(0);
    await waitFor(() => !nc.isClosed() && nc.flush().then(() => true));
    const info = await jsm.streams.info('RESTART_RESULTS');
    expect(info.state.messages).toBe(1);
    const stored = await jsm.streams.getMessage('RESTART_RESULTS', { seq: info.state.first_seq });
    expect(stored?.json()).toMatchObject({ id: 'survivor', status: 'success', attempt: 1 });
    expect(await runsPerJob()).toEqual({ survivor: 1 });
    const consumer = await consumerState(nc, q.stream, 'restart');
    expect(consumer.num_ack_pending).toBe(0);
    expect(consumer.num_pending).toBe(0);
  }, 60_000);

  it('a duplicate of a running job waits out the claim, then republishes the stored result', async () => {
    const q = queue('dup');
    const go = gate(box.root);
    await box.makeJob('dup', countedJob(go));
    const results = await collect(nc, `${q.output}.>`);
    const a = worker(q, 'dup', '--lease', '2s');
    await ready(a);
    await submit(nc, q.input, { id: 'dup' });
    await waitFor(async () => (await runsPerJob()).dup === 1);
    const b = worker(q, 'dup', '--lease', '2s', '--idle-timeout', '20s');
    await ready(b);
    await submit(nc, q.input, { id: 'dup' });
    await b.waitForOutput('job claimed elsewhere');
    await go.open();
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    expect(await runsPerJob()).toEqual({ dup: 1 });
    const got = results.json<{ id: string; replayed?: boolean; attempt: number }>();
    expect(got).toEqual([
      expect.objectContaining({ id: 'dup', attempt: 1 }),
      expect.objectContaining({ id: 'dup', attempt: 1, replayed: true }),
    ]);
    expect(got[0]!.replayed).toBeUndefined();

    // A request for a job that has finished is answered from its result.json.
    const c = worker(q, 'dup');
    await ready(c);
    await submit(nc, q.input, { id: 'dup' });
    expect((await c.exited).code).toBe(0);
    await results.waitFor(3);
    expect(results.json()[2]).toMatchObject({ id: 'dup', status: 'success', replayed: true });
    expect(await runsPerJob()).toEqual({ dup: 1 });
  }, 60_000);

  it('keeps a job alive while it stages and hashes a big tree (job longer than the ack wait)', async () => {
    const q = queue('tree');
    const files: Record<string, string> = {};
    const chunk = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 4000; i++) files[`src/d${i % 40}/f${i}.txt`] = `${i}${chunk}`;
    await box.makeJob('tree', countedJob(), files);
    const results = await collect(nc, `${q.output}.>`);
    // A short ack wait: a stalled event loop during copying or hashing would let it expire.
    const a = worker(q, 'tree', '--ack-wait', '1s');
    await ready(a);
    const b = worker(q, 'tree', '--ack-wait', '1s', '--idle-timeout', '5s');
    await ready(b);
    await submit(nc, q.input, { id: 'tree' });
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    expect(await runsPerJob()).toEqual({ tree: 1 });
    expect(a.stdout + a.stderr).not.toContain('in-progress ack late');
    expect(results.json()).toEqual([expect.objectContaining({ id: 'tree', status: 'success' })]);
    expect((await consumerState(nc, q.stream, 'tree')).num_redelivered).toBe(0);
  }, 60_000);

  it('retries a job whose results cannot be written, then answers RESULTS_UNWRITABLE and dead-letters it', async () => {
    const heal = queue('heal');
    const doom = queue('doom');
    // An immutable results/ (chmod does not stop root): the drive refuses the job's results.
    await box.makeJob('heals', countedJob(), { 'results/.keep': '' });
    await box.makeJob('doomed', countedJob(), { 'results/.keep': '' });
    const locked = [
      path.join(box.jobsDir, 'heals/results'),
      path.join(box.jobsDir, 'doomed/results'),
    ];
    for (const dir of locked) execFileSync('chattr', ['+i', dir]);
    try {
      const healed = await collect(nc, `${heal.output}.>`);
      const doomedResults = await collect(nc, `${doom.output}.>`);
      const retry = ['--results-backoff', '0.2s'];
      const a = worker(heal, 'heal', '--idle-timeout', '30s', '--results-retries', '20', ...retry);
      const b = worker(doom, 'doom', '--idle-timeout', '15s', '--results-retries', '2', ...retry);
      await Promise.all([ready(a), ready(b)]);
      await submit(nc, heal.input, { id: 'heals' });
      await submit(nc, doom.input, { id: 'doomed' });
      await a.waitForOutput('results dir not writable; trying again');
      execFileSync('chattr', ['-i', locked[0]!]);

      // Writable again within its tries: it runs.
      expect((await a.exited).code).toBe(0);
      expect(healed.json()).toEqual([expect.objectContaining({ id: 'heals', status: 'success' })]);

      // Still unwritable on its last try: answered, recorded as a dead letter, not dropped.
      await b.waitForOutput('request dead-lettered');
      await waitFor(() => doomedResults.json().length > 0);
      expect(doomedResults.json()).toEqual([
        expect.objectContaining({ id: 'doomed', status: 'error', errorCode: 'RESULTS_UNWRITABLE' }),
      ]);
      b.kill('SIGTERM');
      await b.exited;
      const jsm = await jetstreamManager(nc);
      const dead = await jsm.streams.getMessage(doom.stream, { last_by_subj: doom.dead });
      expect(dead?.json()).toEqual({ id: 'doomed' });
      const consumer = await consumerState(nc, doom.stream, 'doom');
      expect(consumer.num_ack_pending).toBe(0);
      expect(consumer.num_pending).toBe(0);
      expect(await runsPerJob()).toEqual({ heals: 1 });
    } finally {
      for (const dir of locked) execFileSync('chattr', ['-i', dir]);
    }
  }, 120_000);

  it('exits 1 when the server does not come back; the next worker replays the stored result', async () => {
    const q = queue('gone');
    const go = gate(box.root);
    await box.makeJob('orphan', countedJob(go));
    const lossy = ['--ack-wait', '2s', '--reconnect-attempts', '2', '--reconnect-wait', '0.2s'];
    const idle = worker(q, 'gone', ...lossy);
    const a = worker(q, 'gone', ...lossy);
    await Promise.all([ready(idle), ready(a)]);
    await submit(nc, q.input, { id: 'orphan' });
    await waitFor(async () => (await runsPerJob()).orphan === 1);
    const back = reconnected(nc);
    await server.stop();
    // The job ends while the server is away, so its result cannot go out.
    await go.open();
    // Both the idle worker and the one whose result cannot go out end as worker faults.
    expect((await idle.exited).code).toBe(1);
    expect((await a.exited).code).toBe(1);
    expect(await box.readResult('orphan')).toMatchObject({ status: 'success', attempt: 1 });

    await server.start();
    await back;
    const results = await collect(nc, `${q.output}.>`);
    const b = worker(q, 'gone', '--ack-wait', '2s');
    expect((await b.exited).code).toBe(0);
    expect(results.json()).toEqual([
      expect.objectContaining({ id: 'orphan', status: 'success', attempt: 1, replayed: true }),
    ]);
    expect(await runsPerJob()).toEqual({ orphan: 1 });
  }, 60_000);
});

/** Resolves when the client has reconnected after a server restart. */
async function reconnected(conn: NatsConnection): Promise<void> {
  for await (const s of conn.status()) if (s.type === 'reconnect') return;
}
