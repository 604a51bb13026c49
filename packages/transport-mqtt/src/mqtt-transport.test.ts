import { readFile } from 'node:fs/promises';
import { createWorker, type Logger, type WorkerSummary } from '@jw/core';
import { createSandbox, type Sandbox, waitFor, writeExpiredClaim } from '@jw/testing/fs';
import {
  type Mosquitto,
  mosquittoPub,
  startMosquitto,
  type TopicWatch,
  watchTopics,
} from '@jw/testing/mosquitto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMqttTransport } from './index.js';
import type { MqttTransportOptions } from './options.js';

let broker: Mosquitto;
let sb: Sandbox;
let watch: TopicWatch;
const running: Started[] = [];
let n = 0;

beforeAll(async () => {
  broker = await startMosquitto({ tls: true });
});
afterAll(async () => {
  await broker?.close();
});
beforeEach(async () => {
  sb = await createSandbox('jw-mqtt-');
  n++;
  watch = await watchTopics(broker.url, [
    'jobs/results/#',
    'jobs/progress/#',
    'jobs/dead',
    'workers/#',
  ]);
});
afterEach(async () => {
  for (const w of running.splice(0)) {
    const slow = setTimeout(
      () => console.error(`stop of ${w.id} is slow`, JSON.stringify(w.logs.slice(-15))),
      15_000,
    );
    await w.stop().catch(() => {});
    clearTimeout(slow);
  }
  const slow = setTimeout(() => console.error('teardown slow', watch.messages.length), 15_000);
  await watch.close();
  await sb.cleanup();
  clearTimeout(slow);
});

/** Log lines of a worker, to assert on what it said (a reconnect, a give-back). */
function captureLogger(lines: { level: string; msg: string; obj: unknown }[]): Logger {
  const at = (level: string) => (obj: unknown, msg?: string) =>
    lines.push({ level, msg: msg ?? '', obj });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface Started {
  id: string;
  run: Promise<WorkerSummary>;
  logs: { level: string; msg: string; obj: unknown }[];
  stop(): Promise<void>;
}

/** A worker in this process over MQTT; resolves once its retained status says online. */
async function startWorker(
  id: string,
  options: Partial<MqttTransportOptions> & {
    maxJobs?: number;
    concurrency?: number;
    idleTimeoutMs?: number;
  } = {},
): Promise<Started> {
  const { maxJobs = 0, concurrency = 1, idleTimeoutMs = 0, ...mqtt } = options;
  const logs: Started['logs'] = [];
  const transport = createMqttTransport({ url: broker.url, topic: `t${n}/jobs/pending`, ...mqtt });
  const worker = createWorker({
    transport,
    jobsDir: sb.jobsDir,
    workspacesDir: sb.workspacesDir,
    workerId: id,
    version: '0.0.0-test',
    concurrency,
    maxJobs,
    idleTimeoutMs,
    stopGraceMs: 2_000,
    logger: captureLogger(logs),
  });
  const seen = watch.messages.length;
  const run = worker.run();
  run.catch(() => {});
  const online = watch.waitFor(
    (m) =>
      m.topic === `workers/${id}/status` &&
      m.payload.includes('"online"') &&
      watch.messages.indexOf(m) >= seen,
  );
  online.catch(() => {});
  // A fast one-shot worker may be done before its status shows up; a failed start throws here.
  await Promise.race([online, run.then(() => online)]);
  const started = { id, run, logs, stop: () => worker.stop() };
  running.push(started);
  return started;
}

const results = (id: string) => watch.json(`jobs/results/${id}`);
const resultOf = async (id: string, timeoutMs?: number) =>
  JSON.parse((await watch.waitFor((m) => m.topic === `jobs/results/${id}`, timeoutMs)).payload);
const publishJob = (body: unknown, topic = `t${n}/jobs/pending`) =>
  mosquittoPub(broker.url, topic, typeof body === 'string' ? body : JSON.stringify(body));

describe('MQTT transport against a real Mosquitto', () => {
  it('runs a job published with mosquitto_pub and publishes result and progress', async () => {
    await sb.makeJob('hello', { steps: ['echo hello from $JW_JOB_ID'] });
    const w = await startWorker('w-happy', { maxJobs: 1 });
    await publishJob({ id: 'hello' });
    const result = await resultOf('hello');
    expect(result).toMatchObject({
      id: 'hello',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
    });
    expect((await w.run).reason).toBe('max-jobs');
    expect(await sb.readLog('hello', 0)).toContain('hello from hello');
    const manifest = await sb.readResult('hello');
    expect(manifest.worker).toMatchObject({ id: 'w-happy', transport: 'mqtt' });
    const states = watch.json('jobs/progress/hello').map((e) => e.state);
    expect(states).toEqual(expect.arrayContaining(['claimed', 'running', 'success']));
    // Shut down cleanly: the retained status says offline (not empty, not the will).
    const status = await watch.waitFor(
      (m) => m.topic === 'workers/w-happy/status' && m.payload.includes('"offline"'),
    );
    expect(JSON.parse(status.payload)).toMatchObject({ workerId: 'w-happy', status: 'offline' });
  });

  it('speaks MQTT 3.1.1 when asked', async () => {
    await sb.makeJob('v311', { steps: ['true'] });
    const w = await startWorker('w-v311', { maxJobs: 1, protocolVersion: 4 });
    await publishJob({ id: 'v311' });
    expect(await resultOf('v311')).toMatchObject({ status: 'success' });
    await w.run;
  });

  it('matches requests by subscription: wildcards and $share groups', async () => {
    await sb.makeJob('wild', { steps: ['true'] });
    await sb.makeJob('shared', { steps: ['true'] });
    const wild = await startWorker('w-wild', { topic: `t${n}/+/pending`, maxJobs: 1 });
    await publishJob({ id: 'wild' }, `t${n}/site-a/pending`);
    expect(await resultOf('wild')).toMatchObject({ status: 'success' });
    await wild.run;
    const shared = await startWorker('w-shared', {
      topic: `$share/g${n}/t${n}/jobs/pending`,
      clean: true,
      maxJobs: 1,
    });
    await publishJob({ id: 'shared' });
    expect(await resultOf('shared')).toMatchObject({ status: 'success' });
    await shared.run;
  });

  it('shares 30 jobs between three workers of a $share group, each run exactly once', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `share-${i}`);
    for (const id of ids) await sb.makeJob(id, { steps: ['sleep 0.05'] });
    const topic = `$share/pool${n}/t${n}/jobs/pending`;
    const workers = await Promise.all(
      ['p1', 'p2', 'p3'].map((id) => startWorker(id, { topic, clean: true })),
    );
    await Promise.all(ids.map((id) => publishJob({ id })));
    await waitFor(() => ids.every((id) => results(id).length > 0), 60_000);
    for (const id of ids) {
      expect(results(id)).toHaveLength(1);
      expect(results(id)[0]).toMatchObject({ status: 'success', attempt: 1 });
      expect((await sb.readResult(id)).attempt).toBe(1);
    }
    const byWorker = new Set(ids.map((id) => results(id)[0]!.workerId));
    expect(byWorker.size).toBeGreaterThan(1);
    await Promise.all(workers.map((w) => w.stop()));
  });

  it('a one-shot worker gives back the requests the broker queued for it (clean session)', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `gb-${i}`);
    for (const id of ids) await sb.makeJob(id, { steps: ['sleep 0.5'] });
    const topic = `$share/gb${n}/t${n}/jobs/pending`;
    const oneShot = await startWorker('gb-one', { topic, clean: true, maxJobs: 1 });
    const steady = await startWorker('gb-steady', { topic, clean: true });
    await Promise.all(ids.map((id) => publishJob({ id })));
    await waitFor(() => ids.every((id) => results(id).length > 0), 30_000);
    expect((await oneShot.run).handled).toBe(1);
    for (const id of ids) expect(results(id)).toHaveLength(1);
    expect(oneShot.logs.some((l) => l.msg.includes('gave a request back'))).toBe(true);
    await steady.stop();
  });

  it('keeps a persistent session: a job published while the worker is down runs on its next start', async () => {
    await sb.makeJob('first', { steps: ['sleep 0.5'] });
    await sb.makeJob('during', { steps: ['true'] });
    await sb.makeJob('offline', { steps: ['true'] });
    const options = { clientId: `persist-${n}`, maxJobs: 1 };
    const w1 = await startWorker('persist', options);
    await publishJob({ id: 'first' });
    await watch.waitFor(
      (m) => m.topic === 'jobs/progress/first' && m.payload.includes('"running"'),
    );
    // Arrives while the one-shot worker is busy: held, never acknowledged, kept by the broker.
    await publishJob({ id: 'during' });
    expect(await resultOf('first')).toMatchObject({ status: 'success' });
    expect((await w1.run).handled).toBe(1);
    await publishJob({ id: 'offline' });
    const w2 = await startWorker('persist', { ...options, maxJobs: 2 });
    expect(await resultOf('during')).toMatchObject({ status: 'success' });
    expect(await resultOf('offline')).toMatchObject({ status: 'success' });
    expect((await w2.run).handled).toBe(2);
  });

  it('clean session: nothing is queued for a worker that is gone', async () => {
    await sb.makeJob('c1', { steps: ['true'] });
    await sb.makeJob('c2', { steps: ['true'] });
    const options = { clientId: `clean-${n}`, clean: true, maxJobs: 1 };
    const w1 = await startWorker('cleaner', options);
    await publishJob({ id: 'c1' });
    expect(await resultOf('c1')).toMatchObject({ status: 'success' });
    await w1.run;
    await publishJob({ id: 'c2' });
    const w2 = await startWorker('cleaner', { ...options, idleTimeoutMs: 1_000 });
    expect((await w2.run).reason).toBe('idle');
    expect(results('c2')).toHaveLength(0);
  });

  it('answers bad payloads with BAD_REQUEST and dead letters, and keeps working', async () => {
    await sb.makeJob('good-after', { steps: ['true'] });
    const w = await startWorker('w-bad', { maxJobs: 1 });
    const topic = `t${n}/jobs/pending`;
    await publishJob('this is not json');
    await publishJob({ steps: ['echo no id'] });
    await publishJob({ id: '../escape' });
    const big = JSON.stringify({ id: 'too-big', pad: 'x'.repeat(10 * 1024 * 1024) });
    await mosquittoPub(broker.url, topic, big);
    await mosquittoPub(broker.url, topic, null, { retain: true });
    await waitFor(() => watch.json('jobs/dead').length >= 5, 20_000);
    const dead = watch.json('jobs/dead');
    expect(
      dead.every(
        (d) => d.errorCode === 'BAD_REQUEST' && d.workerId === 'w-bad' && d.topic === topic,
      ),
    ).toBe(true);
    expect(dead.map((d) => d.payload ?? '')).toEqual(
      expect.arrayContaining([
        'this is not json',
        '{"steps":["echo no id"]}',
        '{"id":"../escape"}',
        '',
      ]),
    );
    const bigRecord = dead.find((d) => d.jobId === 'too-big')!;
    expect(bigRecord).toMatchObject({ payloadBytes: Buffer.byteLength(big), truncated: true });
    expect(await resultOf('too-big')).toMatchObject({
      id: 'too-big',
      status: 'error',
      errorCode: 'BAD_REQUEST',
    });
    // Only the id that is valid gets a result topic; nothing is published under an unsafe one.
    expect(watch.messages.filter((m) => m.topic.startsWith('jobs/results/'))).toHaveLength(1);
    await publishJob({ id: 'good-after' });
    expect(await resultOf('good-after')).toMatchObject({ status: 'success' });
    expect((await w.run).rejected).toBe(5);
  });

  it('cancels a running job on jobs/cancel/{id}', async () => {
    await sb.makeJob('long', { steps: ['sleep 30'] });
    const w = await startWorker('w-cancel', { maxJobs: 1 });
    await publishJob({ id: 'long' });
    await watch.waitFor((m) => m.topic === 'jobs/progress/long' && m.payload.includes('"running"'));
    await mosquittoPub(broker.url, 'jobs/cancel/long', JSON.stringify({ reason: 'user asked' }));
    expect(await resultOf('long')).toMatchObject({ status: 'cancelled', errorCode: 'CANCELLED' });
    await w.run;
  });

  it('does not stall keepalive while a request waits for a busy worker', async () => {
    await sb.makeJob('slow', { steps: ['sleep 4'] });
    await sb.makeJob('waiting', { steps: ['true'] });
    // Keepalive 1 s: a stalled packet loop would drop the connection within 1.5 s.
    const w = await startWorker('w-keepalive', { keepaliveSeconds: 1, maxJobs: 2 });
    await publishJob({ id: 'slow' });
    await watch.waitFor((m) => m.topic === 'jobs/progress/slow' && m.payload.includes('"running"'));
    await publishJob({ id: 'waiting' });
    expect(await resultOf('slow')).toMatchObject({ status: 'success' });
    expect(await resultOf('waiting')).toMatchObject({ status: 'success' });
    await w.run;
    expect(w.logs.filter((l) => /reconnect|unreachable/i.test(l.msg))).toEqual([]);
  });

  it('publishes the result after the broker restarts mid-job', async () => {
    await sb.makeJob('restart', { steps: ['sleep 2', 'echo after'] });
    const durable = await watchTopics(broker.url, ['jobs/results/restart'], {
      sessionId: `durable-${n}`,
    });
    try {
      const w = await startWorker('w-restart', {
        maxJobs: 1,
        reconnectMinMs: 100,
        reconnectMaxMs: 500,
      });
      await publishJob({ id: 'restart' });
      await watch.waitFor(
        (m) => m.topic === 'jobs/progress/restart' && m.payload.includes('"running"'),
      );
      await broker.stop();
      await broker.start();
      const result = JSON.parse(
        (await durable.waitFor((m) => m.topic === 'jobs/results/restart', 30_000)).payload,
      );
      expect(result).toMatchObject({ id: 'restart', status: 'success' });
      expect((await w.run).handled).toBe(1);
      expect(w.logs.some((l) => l.msg === 'MQTT reconnected')).toBe(true);
    } finally {
      await durable.close();
    }
  });

  it('connects over TLS with a CA', async () => {
    const tls = broker.tls!;
    const { readFile } = await import('node:fs/promises');
    await sb.makeJob('secure', { steps: ['true'] });
    const w = await startWorker('w-tls', {
      url: tls.url,
      ca: await readFile(tls.caFile),
      maxJobs: 1,
    });
    await publishJob({ id: 'secure' });
    expect(await resultOf('secure')).toMatchObject({ status: 'success' });
    await w.run;
  });

  it('refuses a TLS broker it cannot verify as a bad setting', async () => {
    const transport = createMqttTransport({ url: broker.tls!.url });
    const worker = createWorker({
      transport,
      jobsDir: sb.jobsDir,
      workspacesDir: sb.workspacesDir,
      workerId: 'w-tls-bad',
    });
    await expect(worker.run()).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });

  it('recovers a job whose worker died (expired claim) at start', async () => {
    const dir = await sb.makeJob('orphan', { steps: ['echo recovered'] });
    await writeExpiredClaim(dir);
    const w = await startWorker('w-recover', { maxJobs: 1 });
    expect(await resultOf('orphan')).toMatchObject({ status: 'success', attempt: 2 });
    await w.run;
  });

  it('claims a recovered job before queueing it, and gives the claim up on stop if it never ran', async () => {
    const dir = await sb.makeJob('pre-claimed', { steps: ['echo "$FROM" > from.txt'] });
    await writeExpiredClaim(dir, { request: { id: 'pre-claimed', env: { FROM: 'first' } } });
    const transport = createMqttTransport({ url: broker.url, topic: `t${n}/jobs/pending` });
    const claimFile = `${dir}/results/.claim`;
    const readClaimFile = async () => JSON.parse(await readFile(claimFile, 'utf8'));
    await transport.start({
      workerId: 'w-preclaim',
      jobsDir: sb.jobsDir,
      concurrency: 1,
      leaseMs: 30_000,
      logger: captureLogger([]),
      cancelJob: () => false,
      activeJobs: () => [],
      signal: new AbortController().signal,
    });
    // Nobody asked for it (no next()): it waits in the inbox under this worker's claim.
    const claim = await waitFor(async () => {
      const c = await readClaimFile();
      return c.workerId === 'w-preclaim' ? c : undefined;
    });
    expect(Date.parse(claim.expiresAt)).toBeGreaterThan(Date.now());
    expect(claim).toMatchObject({ attempt: 2, request: { env: { FROM: 'first' } } });
    await transport.stop();
    const after = await readClaimFile();
    expect(after.token).toBe(claim.token);
    expect(Date.parse(after.expiresAt)).toBeLessThanOrEqual(Date.now());
    // The next worker takes it at once, and runs it as first asked.
    const w = await startWorker('w-after', { maxJobs: 1 });
    expect(await resultOf('pre-claimed')).toMatchObject({ status: 'success', attempt: 3 });
    await w.run;
    expect(await readFile(`${dir}/results/from.txt`, 'utf8')).toBe('first\n');
  });

  it('finds jobs of dead workers on its recovery interval too', async () => {
    const w = await startWorker('w-interval', { recoverIntervalMs: 200 });
    const dir = await sb.makeJob('late-orphan', { steps: ['true'] });
    await writeExpiredClaim(dir);
    expect(await resultOf('late-orphan')).toMatchObject({
      status: 'success',
      attempt: 2,
      workerId: 'w-interval',
    });
    await w.stop();
    expect(results('late-orphan')).toHaveLength(1);
  });

  it('a job given back on shutdown is published again and another worker runs it', async () => {
    await sb.makeJob('handover', { steps: ['sleep 5'] });
    const topic = `$share/ho${n}/t${n}/jobs/pending`;
    const leaving = await startWorker('w-leaving', { topic, clean: true, recover: false });
    await publishJob({ id: 'handover' });
    await watch.waitFor(
      (m) => m.topic === 'jobs/progress/handover' && m.payload.includes('"running"'),
    );
    const taking = await startWorker('w-taking', { topic, clean: true, recover: false });
    // Grace 2 s < the 5 s step: the job is cancelled, marked requeued and its message given back.
    await leaving.stop();
    const result = await resultOf('handover', 30_000);
    expect(result).toMatchObject({ status: 'success', attempt: 2, workerId: 'w-taking' });
    expect(watch.json('jobs/progress/handover').map((e) => e.state)).toContain('requeued');
    await taking.stop();
  });

  it('fails with TRANSPORT_FAILED when the broker stays away longer than giveUpAfterMs', async () => {
    await sb.makeJob('never', { steps: ['true'] });
    const w = await startWorker('w-giveup', {
      giveUpAfterMs: 1_000,
      reconnectMinMs: 100,
      reconnectMaxMs: 200,
    });
    await broker.stop();
    try {
      await expect(w.run).rejects.toMatchObject({ code: 'TRANSPORT_FAILED' });
    } finally {
      await broker.start();
    }
    expect(w.logs.some((l) => l.level === 'error' && /unreachable/.test(l.msg))).toBe(true);
  });

  it('dead-letters a message from a subscription an earlier run left in the persistent session', async () => {
    const options = { clientId: `moved-${n}`, maxJobs: 1, idleTimeoutMs: 1_500 };
    const before = await startWorker('w-moved', { ...options, topic: `t${n}/old/pending` });
    await before.stop();
    const after = await startWorker('w-moved', { ...options, topic: `t${n}/new/pending` });
    await publishJob({ id: 'stray' }, `t${n}/old/pending`);
    const record = JSON.parse((await watch.waitFor((m) => m.topic === 'jobs/dead')).payload);
    expect(record).toMatchObject({
      topic: `t${n}/old/pending`,
      payload: '{"id":"stray"}',
      workerId: 'w-moved',
    });
    await after.run;
  });

  it('does not recover a given-back job whose steps came in its request; its republished request runs it', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const dir = `${sb.jobsDir}/inline`;
    await mkdir(`${dir}/results`, { recursive: true });
    await writeFile(
      `${dir}/results/result.json`,
      JSON.stringify({ schemaVersion: 1, jobId: 'inline', status: 'requeued', attempt: 1 }),
    );
    // A claim that kept no request (written by an older worker).
    await writeExpiredClaim(dir);
    const w = await startWorker('w-inline', { maxJobs: 1, recoverIntervalMs: 100 });
    await waitFor(() => w.logs.some((l) => l.msg.includes('waiting for its request')));
    expect(results('inline')).toHaveLength(0);
    await publishJob({ id: 'inline', steps: ['echo inline'] });
    expect(await resultOf('inline')).toMatchObject({ status: 'success', attempt: 2 });
    await w.run;
  });

  it('runs up to --concurrency jobs at once, never more', async () => {
    const ids = ['c-a', 'c-b', 'c-c', 'c-d', 'c-e'];
    for (const id of ids) await sb.makeJob(id, { steps: ['sleep 0.6'] });
    const w = await startWorker('w-conc', { concurrency: 2, maxJobs: ids.length });
    await Promise.all(ids.map((id) => publishJob({ id })));
    await w.run;
    const spans = await Promise.all(
      ids.map(async (id) => {
        const { timing } = await sb.readResult(id);
        return [Date.parse(timing.start), Date.parse(timing.end)] as const;
      }),
    );
    const overlap = (t: number) => spans.filter(([a, b]) => a <= t && t < b).length;
    const most = Math.max(...spans.map(([a]) => overlap(a)));
    expect(most).toBe(2);
  });
});
