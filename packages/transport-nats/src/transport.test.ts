import { ErrorCode, JwError, type ResultMessage, type TransportContext } from '@jw/core';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NatsDelivery } from './delivery.js';
import { createNatsTransport, type NatsTransportOptions } from './index.js';

let server: NatsServer;
let client: NatsConnection;
let n = 0;
const started: { stop(): Promise<void> }[] = [];

beforeAll(async () => {
  // Room for a request larger than the worker accepts (1 MiB), to see it refused.
  server = await startNatsServer({ maxPayload: 4 * 1024 * 1024 });
  client = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
});

afterEach(async () => {
  await Promise.allSettled(started.splice(0).map((t) => t.stop()));
});

afterAll(async () => {
  await client?.close();
  await server?.close();
});

/** Each test gets its own stream and subjects, so their messages never mix. */
function names() {
  n += 1;
  return {
    stream: `S${n}`,
    inputSubject: `t${n}.pending`,
    outputSubject: `t${n}.results`,
    deadLetterSubject: `t${n}.dead`,
    progressSubject: `t${n}.progress`,
    cancelSubject: `t${n}.cancel`,
    statusSubjectPrefix: `t${n}.workers`,
  };
}

function contextOf(workerId: string, extra: Partial<TransportContext> = {}): TransportContext {
  return {
    workerId,
    jobsDir: '/nonexistent',
    concurrency: 1,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    cancelJob: () => false,
    activeJobs: () => [],
    signal: new AbortController().signal,
    ...extra,
  };
}

async function startTransport(
  options: NatsTransportOptions,
  workerId = 'w1',
  extra: Partial<TransportContext> = {},
) {
  const transport = createNatsTransport({
    url: server.url,
    ackWaitMs: 2_000,
    pullExpiresMs: 1_000,
    ...options,
  });
  await transport.start(contextOf(workerId, extra));
  started.push(transport);
  return transport;
}

/**
 * The next message on a subject. Resolves its outer promise once the server knows
 * the subscription, so the action that sends the message can follow.
 */
async function nextOn(subject: string, timeoutMs = 30_000): Promise<{ message: Promise<Msg> }> {
  const sub = client.subscribe(subject, { max: 1, timeout: timeoutMs });
  await client.flush();
  const message = (async () => {
    for await (const m of sub) return m;
    throw new Error(`nothing on ${subject}`);
  })();
  return { message };
}

/** Resolves when the client has reconnected after a server restart. */
async function reconnected(nc: NatsConnection): Promise<void> {
  for await (const s of nc.status()) if (s.type === 'reconnect') return;
}

async function nextDelivery(
  transport: { next(s: AbortSignal): Promise<unknown> },
  timeoutMs = 30_000,
) {
  const d = (await transport.next(AbortSignal.timeout(timeoutMs))) as NatsDelivery | null;
  if (!d) throw new Error('no delivery');
  return d;
}

function resultOf(id: string): ResultMessage {
  return {
    id,
    status: 'success',
    exitCode: 0,
    manifestFile: 'results/result.json',
    workerId: 'w1',
    attempt: 1,
  };
}

async function consumerInfo(stream: string, durable: string) {
  const jsm = await jetstreamManager(client);
  return jsm.consumers.info(stream, durable);
}

describe('NATS transport', () => {
  it('creates the stream and durable consumer on first start, then takes work', async () => {
    const s = names();
    const transport = await startTransport(s, 'fresh-id');
    const jsm = await jetstreamManager(client);
    const stream = await jsm.streams.info(s.stream);
    expect(stream.config.subjects).toEqual([s.inputSubject, s.deadLetterSubject]);
    const consumer = await consumerInfo(s.stream, 'fresh-id');
    expect(consumer.config.ack_wait).toBe(2_000 * 1_000_000);
    expect(consumer.config.filter_subject).toBe(s.inputSubject);

    await client.publish(s.inputSubject, JSON.stringify({ id: 'job1' }));
    const delivery = await nextDelivery(transport);
    expect(JSON.parse(Buffer.from(delivery.body).toString())).toEqual({ id: 'job1' });
    expect(delivery.deliveryCount).toBe(1);
    const result = await nextOn(`${s.outputSubject}.job1`);
    await delivery.complete(resultOf('job1'), undefined);
    expect(JSON.parse((await result.message).string())).toMatchObject({
      id: 'job1',
      status: 'success',
    });
    const after = await consumerInfo(s.stream, 'fresh-id');
    expect(after.num_ack_pending).toBe(0);
    expect(after.num_pending).toBe(0);
  });

  it('lets the claim go once the result is published and before the ack', async () => {
    const s = names();
    const transport = await startTransport(s, 'held-id');
    await client.publish(s.inputSubject, JSON.stringify({ id: 'held' }));
    const delivery = await nextDelivery(transport);
    const result = await nextOn(`${s.outputSubject}.held`);
    let ackPending: number | undefined;
    await delivery.complete(resultOf('held'), undefined, async () => {
      // The result is out; the server still holds the delivery, so a kill now redelivers it.
      await result.message;
      ackPending = (await consumerInfo(s.stream, 'held-id')).num_ack_pending;
    });
    expect(ackPending).toBe(1);
    expect((await consumerInfo(s.stream, 'held-id')).num_ack_pending).toBe(0);
  });

  it('publishes results through JetStream when a stream captures them, once per request', async () => {
    const s = names();
    const jsm = await jetstreamManager(client);
    await jsm.streams.add({ name: `${s.stream}R`, subjects: [`${s.outputSubject}.>`] });
    const transport = await startTransport(s);
    await client.publish(s.inputSubject, JSON.stringify({ id: 'job2' }));
    const delivery = await nextDelivery(transport);
    await delivery.complete(resultOf('job2'), undefined);
    const stored = await jsm.streams.getMessage(`${s.stream}R`, {
      last_by_subj: `${s.outputSubject}.job2`,
    });
    expect(stored?.json()).toMatchObject({ id: 'job2', status: 'success' });
    expect((await jsm.streams.info(`${s.stream}R`)).state.messages).toBe(1);
  });

  it('publishes on the bare output subject with flatResults', async () => {
    const s = names();
    const transport = await startTransport({ ...s, flatResults: true });
    await client.publish(s.inputSubject, JSON.stringify({ id: 'job3' }));
    const delivery = await nextDelivery(transport);
    const result = await nextOn(s.outputSubject);
    await delivery.complete(resultOf('job3'), undefined);
    expect((await result.message).subject).toBe(s.outputSubject);
  });

  it('takes one message per next(): a second waits in the stream for another worker', async () => {
    const s = names();
    const a = await startTransport(s);
    const b = await startTransport(s);
    await client.publish(s.inputSubject, JSON.stringify({ id: 'one' }));
    await client.publish(s.inputSubject, JSON.stringify({ id: 'two' }));
    const first = await nextDelivery(a);
    expect((await consumerInfo(s.stream, 'w1')).num_ack_pending).toBe(1);
    const second = await nextDelivery(b);
    const ids = [first, second].map((d) => JSON.parse(Buffer.from(d.body).toString()).id).sort();
    expect(ids).toEqual(['one', 'two']);
    await first.complete(resultOf('one'), undefined);
    await second.complete(resultOf('two'), undefined);
  });

  it('keeps a delivery alive past the ack wait while it is held', async () => {
    const s = names();
    // A 4 s ack wait: in-progress acks every 1.3 s leave room for a stalled, busy machine.
    const holder = await startTransport({ ...s, ackWaitMs: 4_000 });
    const other = await startTransport({ ...s, ackWaitMs: 4_000 });
    await client.publish(s.inputSubject, JSON.stringify({ id: 'long' }));
    const delivery = await nextDelivery(holder);
    // Over two ack waits: without in-progress acks the other worker would get it twice.
    expect(await other.next(AbortSignal.timeout(9_000))).toBeNull();
    const info = await consumerInfo(s.stream, 'w1');
    expect(info.num_redelivered).toBe(0);
    expect(info.num_ack_pending).toBe(1);
    await delivery.complete(resultOf('long'), undefined);
  });

  it('gives back on shutdown at once and when busy after the delay', async () => {
    const s = names();
    // A long ack wait, so that "at once" (a nak) and "on expiry" are far apart even on a busy machine.
    const a = await startTransport({ ...s, ackWaitMs: 20_000 });
    const b = await startTransport({ ...s, ackWaitMs: 20_000 });
    await client.publish(s.inputSubject, JSON.stringify({ id: 'back' }));
    const first = await nextDelivery(a);
    const t0 = Date.now();
    await first.release('shutdown', 0);
    const second = await nextDelivery(b);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(second.deliveryCount).toBe(2);

    const t1 = Date.now();
    await second.release('busy', 1_500);
    const third = await nextDelivery(a);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(1_400);
    expect(third.deliveryCount).toBe(3);
    await third.complete(resultOf('back'), undefined);
  });

  it('answers, dead-letters with the raw payload and terms a bad request', async () => {
    const s = names();
    const transport = await startTransport(s);
    const raw = '{"id": "bad one", "junk": \u0001';
    await client.publish(s.inputSubject, raw);
    const delivery = await nextDelivery(transport);
    const result = await nextOn(`${s.outputSubject}.known`);
    const error = new JwError(ErrorCode.BAD_REQUEST, 'request is not JSON\nat all', {
      jobId: 'known',
    });
    await delivery.reject(error, {
      ...resultOf('known'),
      status: 'error',
      exitCode: 1,
      errorCode: 'BAD_REQUEST',
    });
    expect(JSON.parse((await result.message).string())).toMatchObject({
      id: 'known',
      errorCode: 'BAD_REQUEST',
    });

    const jsm = await jetstreamManager(client);
    const dead = await jsm.streams.getMessage(s.stream, { last_by_subj: s.deadLetterSubject });
    expect(Buffer.from(dead!.data).toString()).toBe(raw);
    expect(dead!.header.get('Jw-Error-Code')).toBe('BAD_REQUEST');
    expect(dead!.header.get('Jw-Error')).toBe('request is not JSON at all');
    expect(dead!.header.get('Jw-Job-Id')).toBe('known');
    expect(dead!.header.get('Jw-Source-Sequence')).toBe('1');
    const info = await consumerInfo(s.stream, 'w1');
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    expect(await transport.next(AbortSignal.timeout(3_000))).toBeNull();
  });

  it('cuts a dead letter that would not fit next to its headers', async () => {
    const s = names();
    const transport = await startTransport(s);
    const huge = 'x'.repeat(4 * 1024 * 1024 - 200);
    await client.publish(s.inputSubject, huge);
    const delivery = await nextDelivery(transport);
    await delivery.reject(new JwError(ErrorCode.BAD_REQUEST, 'too large'), undefined);
    const jsm = await jetstreamManager(client);
    const dead = await jsm.streams.getMessage(s.stream, { last_by_subj: s.deadLetterSubject });
    expect(dead!.header.get('Jw-Truncated')).toBe('true');
    expect(dead!.header.get('Jw-Payload-Size')).toBe(String(huge.length));
    expect(dead!.data.byteLength).toBeLessThan(huge.length);
  });

  it('dead-letters a job given back as failed on its last delivery', async () => {
    const s = names();
    const transport = await startTransport({ ...s, maxDeliver: 2 });
    await client.publish(s.inputSubject, JSON.stringify({ id: 'flaky' }));
    const first = await nextDelivery(transport);
    await first.release('failed', 100);
    const second = await nextDelivery(transport);
    expect(second.deliveryCount).toBe(2);
    await second.release('failed', 100);
    const jsm = await jetstreamManager(client);
    const dead = await jsm.streams.getMessage(s.stream, { last_by_subj: s.deadLetterSubject });
    expect(dead!.header.get('Jw-Error-Code')).toBe('TRANSPORT_FAILED');
    expect(dead!.json()).toEqual({ id: 'flaky' });
    expect((await consumerInfo(s.stream, 'w1')).num_ack_pending).toBe(0);
  });

  it('returns null when next() is aborted and leaves later messages to others', async () => {
    const s = names();
    const a = await startTransport(s);
    const controller = new AbortController();
    const pending = a.next(controller.signal);
    controller.abort();
    expect(await pending).toBeNull();
    await a.stop();
    const b = await startTransport(s);
    await client.publish(s.inputSubject, JSON.stringify({ id: 'later' }));
    // Delivered once: a pull the abort left behind did not keep it until the ack wait.
    const d = await nextDelivery(b);
    expect(d.deliveryCount).toBe(1);
    await d.complete(resultOf('later'), undefined);
  });

  it('forwards progress, cancels and heartbeats', async () => {
    const s = names();
    const cancelled: [string, string | undefined][] = [];
    const beat = await nextOn(`${s.statusSubjectPrefix}.hb.status`);
    const transport = await startTransport(
      { ...s, heartbeatIntervalMs: 200, version: '9.9.9' },
      'hb',
      {
        cancelJob: (id, reason) => {
          cancelled.push([id, reason]);
          return id === 'running';
        },
        activeJobs: () => ['running'],
      },
    );
    expect(JSON.parse((await beat.message).string())).toMatchObject({
      workerId: 'hb',
      status: 'online',
      activeJobs: ['running'],
      version: '9.9.9',
      pid: process.pid,
    });

    const reply = await client.request(
      `${s.cancelSubject}.running`,
      JSON.stringify({ reason: 'user' }),
    );
    expect(reply.json()).toEqual({ id: 'running', cancelled: true, workerId: 'hb' });
    expect(cancelled).toEqual([['running', 'user']]);

    await client.publish(s.inputSubject, JSON.stringify({ id: 'running' }));
    const delivery = await nextDelivery(transport);
    const progress = await nextOn(`${s.progressSubject}.running`);
    delivery.onEvent({
      jobId: 'running',
      state: 'staging',
      attempt: 1,
      workerId: 'hb',
      at: new Date().toISOString(),
    });
    expect(JSON.parse((await progress.message).string())).toMatchObject({
      jobId: 'running',
      state: 'staging',
    });
    await delivery.complete(resultOf('running'), undefined);

    const offline = client.subscribe(`${s.statusSubjectPrefix}.hb.status`);
    await client.flush();
    const sawOffline = (async () => {
      for await (const m of offline)
        if (m.json<{ status: string }>().status === 'offline') return true;
      return false;
    })();
    await transport.stop();
    expect(await sawOffline.finally(() => offline.unsubscribe())).toBe(true);
  });

  it('finishes a delivery across a server restart without redelivery', async () => {
    const s = names();
    const transport = await startTransport({ ...s, reconnectWaitMs: 100 });
    await client.publish(s.inputSubject, JSON.stringify({ id: 'restart' }));
    const delivery = await nextDelivery(transport);
    const back = reconnected(client);
    await server.stop();
    await server.start();
    await back;
    const result = await nextOn(`${s.outputSubject}.restart`, 20_000);
    await delivery.complete(resultOf('restart'), undefined);
    expect(JSON.parse((await result.message).string())).toMatchObject({ id: 'restart' });
    const info = await consumerInfo(s.stream, 'w1');
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });

  it('refuses a second worker id on a work-queue stream it created as bad settings', async () => {
    const s = names();
    await startTransport(s, 'pool-a');
    await expect(startTransport(s, 'pool-b')).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });

  it('keeps waiting for work across a server restart', async () => {
    const s = names();
    const transport = await startTransport({ ...s, reconnectWaitMs: 100 });
    const waiting = transport.next(AbortSignal.timeout(30_000));
    const back = reconnected(client);
    await server.stop();
    await server.start();
    await back;
    await client.publish(s.inputSubject, JSON.stringify({ id: 'after-restart' }));
    const delivery = (await waiting) as NatsDelivery | null;
    expect(delivery).not.toBeNull();
    expect(JSON.parse(Buffer.from(delivery!.body).toString())).toEqual({ id: 'after-restart' });
    await delivery!.complete(resultOf('after-restart'), undefined);
  });

  it('brings an existing consumer’s ack wait and max deliver in line with its settings', async () => {
    const s = names();
    const first = await startTransport(s, 'tuned');
    await first.stop();
    await startTransport({ ...s, ackWaitMs: 5_000, maxDeliver: 3 }, 'tuned');
    const info = await consumerInfo(s.stream, 'tuned');
    expect(info.config.ack_wait).toBe(5_000 * 1_000_000);
    expect(info.config.max_deliver).toBe(3);
  });

  it('leaves dead letters to a stream that already keeps them when it creates another', async () => {
    const first = names();
    const second = { ...names(), deadLetterSubject: first.deadLetterSubject };
    await startTransport(first, 'q1');
    const transport = await startTransport(second, 'q2');
    const jsm = await jetstreamManager(client);
    expect((await jsm.streams.info(second.stream)).config.subjects).toEqual([second.inputSubject]);
    await client.publish(second.inputSubject, 'not JSON');
    const delivery = await nextDelivery(transport);
    await delivery.reject(new JwError(ErrorCode.BAD_REQUEST, 'not JSON'), undefined);
    const dead = await jsm.streams.getMessage(first.stream, {
      last_by_subj: first.deadLetterSubject,
    });
    expect(dead!.header.get('Jw-Source-Stream')).toBe(second.stream);
  });
});
