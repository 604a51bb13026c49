import { execFileSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, exists, type Sandbox, waitFor, writeExpiredClaim } from '@jw/testing/fs';
import {
  type Mosquitto,
  mosquittoPub,
  startMosquitto,
  type TopicWatch,
  watchTopics,
} from '@jw/testing/mosquitto';
import { type Spawned, spawnProcess } from '@jw/testing/process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

/**
 * Faults through the built binary: broker restarts, kill -9 at the worst moments.
 * The watch keeps a persistent session, so it sees what is published after a restart.
 */
const BIN = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));

let broker: Mosquitto;
let sb: Sandbox;
let watch: TopicWatch;
let n = 0;
const children: Spawned[] = [];

beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await broker?.close();
});
beforeEach(async () => {
  n++;
  sb = await createSandbox('jw-mqtt-faults-');
  watch = await watchTopics(broker.url, ['jobs/#', 'workers/#'], { sessionId: `watch-${n}` });
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.kill('SIGKILL');
    await child.exited;
  }
  await watch.close();
  await sb.cleanup();
});

/** The built binary on this test's own topics, with a persistent session (the default). */
function worker(id: string, args: string[] = [], env: Record<string, string> = {}): Spawned {
  const child = spawnProcess(process.execPath, [BIN, ...args], {
    cwd: sb.root,
    env: {
      PATH: process.env.PATH,
      MQTT_URL: broker.url,
      MQTT_TOPIC: `f${n}/pending`,
      MQTT_JOBS_DIR: sb.jobsDir,
      MQTT_WORKSPACES_DIR: sb.workspacesDir,
      WORKER_ID: id,
      LOG_FORMAT: 'json',
      // Results, progress and dead letters under this test's prefix.
      MQTT_DEAD_LETTER_TOPIC: `f${n}/dead`,
      ...env,
    },
  });
  children.push(child);
  return child;
}

const publishJob = (id: string) =>
  mosquittoPub(broker.url, `f${n}/pending`, JSON.stringify({ id }));
const online = (id: string, after = 0) =>
  watch.waitFor(
    (m) =>
      m.topic === `workers/${id}/status` &&
      m.payload.includes('"online"') &&
      watch.messages.indexOf(m) >= after,
  );
const resultsOf = (id: string) =>
  watch.messages
    .filter((m) => m.topic === `jobs/results/${id}`)
    .map((m) => JSON.parse(m.payload) as Record<string, unknown>);
const resultOf = async (id: string, timeoutMs = 60_000) =>
  JSON.parse((await watch.waitFor((m) => m.topic === `jobs/results/${id}`, timeoutMs)).payload);
const running = (id: string) =>
  watch.waitFor((m) => m.topic === `jobs/progress/${id}` && m.payload.includes('"running"'));
const claimOf = async (id: string) =>
  JSON.parse(await readFile(path.join(sb.jobsDir, id, 'results', '.claim'), 'utf8')) as {
    token: string;
    workerId: string;
  };

describe('mqtt-fs-worker under faults', () => {
  it('a broker restart at concurrency 1, the running job ending during the outage: all 12 queued jobs run, all 12 results arrive', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `r${n}-${String(i).padStart(2, '0')}`);
    await sb.makeJob(ids[0]!, { steps: ['sleep 2'] });
    for (const id of ids.slice(1)) await sb.makeJob(id, { steps: ['sleep 0.2'] });
    const w = worker('restart-1', ['--max-jobs', '0', '--concurrency', '1']);
    await online('restart-1');
    for (const id of ids) await publishJob(id);
    await running(ids[0]!);
    await broker.stop();
    try {
      // The job ends during the outage: its result waits in the client's outgoing store,
      // so on the resumed session mqtt.js flushes it before it emits 'connect', while
      // the broker already re-sends the request it holds for the worker.
      await waitFor(
        async () => (await sb.readResult(ids[0]!).catch(() => undefined))?.status === 'success',
        60_000,
      );
    } finally {
      await broker.start();
    }
    const results = await Promise.all(ids.map((id) => resultOf(id, 90_000)));
    expect(results.map((r) => r.status)).toEqual(ids.map(() => 'success'));
    // Each ran once: the re-sent copy of the held request was not run again (nor replayed).
    for (const id of ids) expect((await sb.readResult(id)).attempt).toBe(1);
    expect(ids.flatMap(resultsOf).filter((r) => r.replayed)).toEqual([]);
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(w.stdout + w.stderr).toContain('MQTT reconnected');
  }, 180_000);

  it('100 queued jobs, a broker restart in the middle, default concurrency: every job runs once', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `h${n}-${String(i).padStart(3, '0')}`);
    for (const id of ids) await sb.makeJob(id, { steps: ['echo $JW_JOB_ID > id.txt'] });
    const w = worker('hundred-1', ['--max-jobs', '0']);
    await online('hundred-1');
    for (const id of ids) await publishJob(id);
    await waitFor(() => ids.filter((id) => resultsOf(id).length > 0).length >= 30, 120_000);
    await broker.stop();
    await broker.start();
    const results = await Promise.all(ids.map((id) => resultOf(id, 180_000)));
    expect(results.map((r) => r.status)).toEqual(ids.map(() => 'success'));
    for (const id of ids) expect((await sb.readResult(id)).attempt).toBe(1);
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 400_000);

  it('never acknowledges before the claim: a worker killed before it could claim leaves the request to its session', async () => {
    const id = `early${n}`;
    const dir = await sb.makeJob(id, { steps: ['echo ran > ran.txt'] });
    // An immutable results/ (chmod does not stop root): the claim cannot be written, and
    // the worker says so while it retries.
    const results = path.join(dir, 'results');
    await mkdir(results);
    execFileSync('chattr', ['+i', results]);
    const first = worker('early-1', ['--max-jobs', '0']);
    await online('early-1');
    await publishJob(id);
    await first.waitForOutput('job received');
    try {
      await first.waitForOutput('results dir not writable; trying again');
      first.kill('SIGKILL');
      await first.exited;
    } finally {
      execFileSync('chattr', ['-i', results]);
    }
    // The same client id finds the unacknowledged request in its session.
    const seen = watch.messages.length;
    const second = worker('early-1', ['--max-jobs', '1', '--skip-recovery']);
    await online('early-1', seen);
    expect(await resultOf(id)).toMatchObject({ id, status: 'success', attempt: 1 });
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(await exists(path.join(dir, 'results', 'ran.txt'))).toBe(true);
  });

  it('a result that could not be sent before a kill -9 is sent by the next worker (replayed)', async () => {
    const id = `durable${n}`;
    await sb.makeJob(id, { steps: ['sleep 1', 'echo done'] });
    const first = worker('durable-1', ['--max-jobs', '0']);
    await online('durable-1');
    await publishJob(id);
    await running(id);
    await broker.stop();
    try {
      // The job ends while the broker is away: its result message cannot be sent.
      await waitFor(
        async () => (await sb.readResult(id).catch(() => undefined))?.status === 'success',
        60_000,
      );
      expect((await claimOf(id)).workerId).toBe('durable-1');
      first.kill('SIGKILL');
      await first.exited;
    } finally {
      await broker.start();
    }
    worker('durable-2', ['--max-jobs', '0']);
    expect(await resultOf(id)).toMatchObject({
      id,
      status: 'success',
      attempt: 1,
      replayed: true,
    });
    // Delivered: the claim that kept it recoverable is gone.
    await waitFor(async () => !(await exists(path.join(sb.jobsDir, id, 'results', '.claim'))));
  });

  it('a killed job is recovered by one of two workers, run once, on the default scan interval', async () => {
    const id = `killed${n}`;
    await sb.makeJob(id, { steps: ['echo started; sleep 1; echo finished'] });
    const doomed = worker('doomed-1', ['--max-jobs', '0']);
    await online('doomed-1');
    const seen = watch.messages.length;
    // Already running (their start-up scan is over) when the job's worker dies.
    // On a topic of their own: they learn of the job only from the drive.
    const elsewhere = { MQTT_TOPIC: `f${n}/elsewhere` };
    const a = worker('rescuer-a', ['--max-jobs', '1', '--idle-timeout', '25s'], elsewhere);
    const b = worker('rescuer-b', ['--max-jobs', '1', '--idle-timeout', '25s'], elsewhere);
    await Promise.all([online('rescuer-a', seen), online('rescuer-b', seen)]);
    await publishJob(id);
    await running(id);
    doomed.kill('SIGKILL');
    await doomed.exited;
    const killedAt = Date.now();
    const result = await resultOf(id, 60_000);
    // The default scan runs every 10 s; on this host a dead pid expires a claim at once.
    expect(Date.now() - killedAt).toBeLessThan(25_000);
    expect(result).toMatchObject({ status: 'success', attempt: 2 });
    // One takes it, the other has nothing to do and ends on its idle time-out.
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    expect(resultsOf(id)).toHaveLength(1);
    const said = [a, b].map((w) => w.stdout + w.stderr);
    const recovering = said.filter((out) => out.includes('recovering a job whose worker died'));
    expect(recovering).toHaveLength(1);
    expect(recovering[0]!.match(/recovering a job whose worker died/g)).toHaveLength(1);
    expect(await sb.readLog(id, 0)).toBe('started\nfinished\n');
  }, 120_000);

  it('claims no more recovered jobs than it has free slots', async () => {
    const ids = [`stale${n}-a`, `stale${n}-b`, `stale${n}-c`];
    for (const id of ids) {
      const dir = await sb.makeJob(id, { steps: [id === ids[0] ? 'sleep 4' : 'sleep 0.5'] });
      await writeExpiredClaim(dir);
    }
    const w = worker('slots-1', [
      '--max-jobs',
      '0',
      '--concurrency',
      '1',
      '--recover-interval',
      '1',
    ]);
    await running(ids[0]!);
    // While one runs, the others keep the dead worker's claim: nobody else is kept from them.
    for (const id of ids.slice(1)) expect((await claimOf(id)).token).toBe('dead-worker');
    const results = await Promise.all(ids.map((id) => resultOf(id)));
    expect(results.map((r) => [r.status, r.attempt])).toEqual(ids.map(() => ['success', 2]));
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  });

  it('accepts the seed short flag -v for --protocol-version', async () => {
    const id = `v311-${n}`;
    await sb.makeJob(id, { steps: ['true'] });
    const w = worker('short-v', ['-v', '3.1.1']);
    await online('short-v');
    await publishJob(id);
    expect(await resultOf(id)).toMatchObject({ status: 'success' });
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(w.stdout + w.stderr).toMatch(/"protocolVersion":4/);
    const bad = worker('short-v-bad', ['-v', '7']);
    expect((await bad.exited).code).toBe(2);
  });
});
