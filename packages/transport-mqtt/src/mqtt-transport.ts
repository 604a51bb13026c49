import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type Delivery,
  ErrorCode,
  findStaleJobs,
  isValidJobId,
  JOB_FILE,
  type JobEvent,
  JwError,
  type Logger,
  RESULTS_DIR,
  type ReleaseReason,
  type ResultMessage,
  readClaim,
  type Transport,
  type TransportContext,
} from '@jw/core';
import type { IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import { createClient, installBackoff } from './connection.js';
import { deadLetterRecord } from './dead-letter.js';
import { Inbox } from './inbox.js';
import { type MqttTransportOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { idUnder, isSafeTopicLevel, topicMatches } from './topics.js';

/** A request waiting for the worker: a broker message (not yet acknowledged) or a recovered job. */
interface Held {
  kind: 'mqtt' | 'recovered';
  body: Buffer;
  topic: string;
  qos: number;
  messageId: number | undefined;
  /** The connection it came on: a PUBACK is only meaningful on that one. */
  generation: number;
  acked: boolean;
  receivedAt: Date;
  /** For a recovered job. */
  jobId?: string;
}

/**
 * mqtt.js sends the PUBACK when `handleMessage` calls back without an error, and moves
 * on to the next packet either way. Calling back with this error therefore defers the
 * PUBACK without stalling the connection (a held callback would stop keepalive).
 */
const DEFER_ACK = new Error('PUBACK deferred until the worker takes the request');

/** Codes of a refused CONNACK that retrying will not fix (MQTT 5 and 3.1.1). */
const REFUSED_FOR_GOOD = new Set([4, 5, 133, 134, 135, 138, 140]);
/** TLS verification failures: a wrong CA or host, not a broker that is down. */
const TLS_FOR_GOOD = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;

const STATUS_VERSION = 1;
/** How long saying goodbye (give-backs, drain, offline status) may take at most. */
const STOP_LIMIT_MS = 30_000;

export class MqttTransport implements Transport {
  readonly name = 'mqtt';
  readonly secretEnv: readonly string[];
  readonly #o: ResolvedOptions;
  readonly #inbox = new Inbox<Held>();
  /** Requests that arrived while stopping on a persistent session: left unacknowledged. */
  readonly #parked: Held[] = [];
  readonly #pending = new Set<Promise<unknown>>();
  readonly #recoveredOut = new Set<string>();
  /** Stale jobs a bare `{ id }` cannot run (already warned about). */
  readonly #unrunnable = new Set<string>();
  readonly #timers: NodeJS.Timeout[] = [];
  #client: MqttClient | undefined;
  #context: TransportContext | undefined;
  #log: Logger | undefined;
  #generation = 0;
  #disconnectedSince: number | undefined;
  #failure: JwError | undefined;
  /** Rejects once, when the transport gives up: every publish still waiting fails with it. */
  readonly #failed: Promise<never>;
  #rejectFailed: (error: JwError) => void = () => {};
  #stopping = false;
  #draining = false;
  #stopped = false;
  #recovering = false;
  #drainWaiter: { nonce: string; resolve(): void } | undefined;
  #statusTopic = '';
  #drainTopic = '';
  #startedAt = new Date();

  constructor(options: MqttTransportOptions & { secretEnv?: readonly string[] }) {
    this.#o = resolveOptions(options);
    this.secretEnv = options.secretEnv ?? ['MQTT_PASSWORD'];
    this.#failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.#failed.catch(() => {});
  }

  get #logger(): Logger {
    return this.#log!;
  }

  async start(context: TransportContext): Promise<void> {
    const o = this.#o;
    this.#context = context;
    this.#log = context.logger;
    const clientId = o.clientId ?? context.workerId;
    if (!isSafeTopicLevel(context.workerId)) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `worker id ${JSON.stringify(context.workerId)} cannot be used in a topic (no / + #)`,
      );
    }
    this.#statusTopic = `${o.topics.workers}/${context.workerId}/status`;
    this.#drainTopic = `${o.topics.workers}/${context.workerId}/drain`;
    const v5 = o.protocolVersion === 5;
    const client = createClient(o, {
      clientId,
      clean: o.clean,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveSeconds,
      connectTimeout: 10_000,
      resubscribe: true,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      ...(v5
        ? {
            properties: {
              // Without an expiry an MQTT 5 session ends with the connection, clean flag or not.
              sessionExpiryInterval: o.clean ? 0 : o.sessionExpirySeconds,
              // The broker sends no more unacknowledged requests than the worker can run.
              receiveMaximum: Math.max(1, context.concurrency),
            },
          }
        : {}),
      will: {
        topic: this.#statusTopic,
        payload: Buffer.from(JSON.stringify(this.#status('offline'))),
        qos: 1,
        retain: true,
      },
    });
    this.#client = client;
    client.handleMessage = (packet, callback) => this.#onPublish(packet, callback);
    client.on('connect', (connack) => this.#onConnect(connack));
    client.on('close', () => {
      this.#disconnectedSince ??= Date.now();
    });
    client.on('offline', () => {
      if (!this.#stopping)
        this.#logger.warn({ url: o.url }, 'MQTT broker unreachable; reconnecting');
    });
    installBackoff(client, o.reconnectMinMs, o.reconnectMaxMs);

    await this.#firstConnect(client);
    const filters: Record<string, { qos: 0 | 1 }> = {
      [o.topic]: { qos: 1 },
      // QoS 0: a cancel must get through while unacknowledged requests fill the receive window.
      [`${o.topics.cancel}/+`]: { qos: 0 },
    };
    if (o.clean) filters[this.#drainTopic] = { qos: 1 };
    let granted: { topic: string; qos: number }[];
    try {
      granted = await client.subscribeAsync(filters);
    } catch (error) {
      await client.endAsync(true);
      throw new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `MQTT subscribe failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const refused = granted.filter((g) => g.qos >= 128).map((g) => g.topic);
    if (refused.length > 0) {
      await client.endAsync(true);
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `MQTT broker refused the subscription to ${refused.join(', ')}`,
      );
    }
    this.#logger.info(
      { url: o.url, topic: o.topic, clientId, clean: o.clean, protocolVersion: o.protocolVersion },
      'MQTT connected and subscribed',
    );
    this.#publishStatus();

    this.#every(o.heartbeatIntervalMs, () => this.#publishStatus());
    if (o.giveUpAfterMs > 0)
      this.#every(Math.min(1000, o.giveUpAfterMs / 4), () => this.#checkGiveUp());
    if (o.recover) {
      await this.#recover();
      this.#every(o.recoverIntervalMs, () => void this.#recover());
    }
  }

  async next(signal: AbortSignal): Promise<Delivery | null> {
    if (this.#stopping) return null;
    const held = await this.#inbox.take(signal);
    if (!held) return null;
    this.#ack(held);
    if (held.kind === 'recovered') this.#recoveredOut.add(held.jobId!);
    return this.#delivery(held);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#inbox.close();
    const client = this.#client;
    if (!client) return;
    const held = [...this.#inbox.drain(), ...this.#parked.splice(0)].filter(
      (h) => h.kind === 'mqtt',
    );
    if (!this.#failure && client.connected) {
      const goodbye = async () => {
        if (this.#o.clean) {
          await this.#drainCleanSession(held);
        } else {
          // Unacknowledged requests stay in the persistent session for the next start;
          // those the broker no longer holds (QoS 0, or from a lost connection) go back.
          for (const h of held) {
            if (h.qos === 0 || h.generation !== this.#generation) await this.#giveBack(h);
          }
        }
        await this.#publish(this.#statusTopic, JSON.stringify(this.#status('offline')), true);
      };
      // Bounded: a broker that stops answering must not keep the worker from exiting.
      const done = await within(goodbye(), STOP_LIMIT_MS).catch((error) => {
        this.#logger.warn({ err: error }, 'MQTT shutdown did not complete cleanly');
        return true;
      });
      if (!done)
        this.#logger.warn(
          { limitMs: STOP_LIMIT_MS },
          'MQTT shutdown took too long; closing anyway',
        );
    }
    if (client.connected) await within(Promise.allSettled([...this.#pending]), 10_000);
    // A normal DISCONNECT: the broker drops the will, since the status already says offline.
    const force = this.#failure !== undefined || !client.connected;
    const ended = await within(client.endAsync(force), 5_000).catch(() => true);
    if (!ended) await client.endAsync(true).catch(() => {});
  }

  // --- connection -------------------------------------------------------------------

  #firstConnect(client: MqttClient): Promise<void> {
    const o = this.#o;
    return new Promise<void>((resolve, reject) => {
      const fail = (error: JwError) => {
        cleanup();
        client.end(true);
        reject(error);
      };
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (error: Error & { code?: string | number }) => {
        if (typeof error.code === 'number' && REFUSED_FOR_GOOD.has(error.code)) {
          fail(
            new JwError(
              ErrorCode.BAD_CONFIG,
              `MQTT broker refused the connection: ${error.message}`,
              { cause: error },
            ),
          );
        } else if (typeof error.code === 'string' && TLS_FOR_GOOD.test(error.code)) {
          fail(
            new JwError(ErrorCode.BAD_CONFIG, `MQTT TLS verification failed: ${error.message}`, {
              cause: error,
            }),
          );
        } else {
          this.#logger.warn({ err: error, url: o.url }, 'MQTT connection failed; retrying');
        }
      };
      const timer =
        o.giveUpAfterMs > 0
          ? setTimeout(
              () =>
                fail(
                  new JwError(
                    ErrorCode.TRANSPORT_FAILED,
                    `no MQTT broker at ${o.url} within ${o.giveUpAfterMs} ms`,
                  ),
                ),
              o.giveUpAfterMs,
            )
          : undefined;
      // The worker was told to stop before the broker ever answered.
      const onStop = () =>
        fail(new JwError(ErrorCode.TRANSPORT_FAILED, 'stopped before connecting'));
      const stopSignal = this.#context?.signal;
      if (stopSignal?.aborted) queueMicrotask(onStop);
      else stopSignal?.addEventListener('abort', onStop, { once: true });
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        stopSignal?.removeEventListener('abort', onStop);
        client.off('connect', onConnect);
        client.off('error', onError);
        client.on('error', (error) => this.#logger.warn({ err: error }, 'MQTT client error'));
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.connect();
    });
  }

  #onConnect(connack: IConnackPacket): void {
    this.#generation++;
    const wasDown = this.#disconnectedSince !== undefined && this.#generation > 1;
    this.#disconnectedSince = undefined;
    if (connack.sessionPresent) {
      // The broker sends unacknowledged requests again on a resumed session: drop our copies.
      const dropped = this.#inbox.drain((h) => h.kind === 'mqtt' && !h.acked && h.qos > 0);
      this.#parked.splice(0);
      if (dropped.length > 0)
        this.#logger.debug(
          { count: dropped.length },
          'resumed session will redeliver held requests',
        );
    }
    if (wasDown) {
      this.#logger.info({ sessionPresent: connack.sessionPresent }, 'MQTT reconnected');
      this.#publishStatus();
    }
  }

  #checkGiveUp(): void {
    const since = this.#disconnectedSince;
    if (since === undefined || this.#failure || this.#stopping) return;
    if (Date.now() - since < this.#o.giveUpAfterMs) return;
    this.#fail(
      new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `MQTT broker at ${this.#o.url} unreachable for ${this.#o.giveUpAfterMs} ms`,
      ),
    );
  }

  #fail(error: JwError): void {
    this.#failure = error;
    this.#logger.error({ err: error }, error.message);
    this.#inbox.fail(error);
    this.#rejectFailed(error);
  }

  #every(ms: number, fn: () => void): void {
    if (ms <= 0) return;
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  // --- incoming ---------------------------------------------------------------------

  #onPublish(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const o = this.#o;
    const topic = packet.topic;
    if (topic.startsWith(`${o.topics.cancel}/`)) {
      callback();
      this.#onCancel(topic, packet.payload);
      return;
    }
    if (topic === this.#drainTopic) {
      callback();
      const waiter = this.#drainWaiter;
      if (waiter && String(packet.payload) === waiter.nonce) waiter.resolve();
      return;
    }
    if (this.#isOwnOutput(topic)) {
      callback();
      return;
    }
    if (!topicMatches(o.topic, topic)) {
      // A subscription left in a persistent session by an earlier --topic: not ours to
      // run, but not dropped silently either.
      callback();
      this.#deadLetterUnmatched(topic, packet.payload);
      return;
    }
    const payload = packet.payload;
    const held: Held = {
      kind: 'mqtt',
      body: typeof payload === 'string' ? Buffer.from(payload) : payload,
      topic,
      qos: packet.qos,
      messageId: packet.messageId,
      generation: this.#generation,
      acked: false,
      receivedAt: new Date(),
    };
    if (this.#draining) {
      callback(DEFER_ACK);
      this.#track(
        this.#giveBack(held).catch((error) =>
          this.#logger.warn({ err: error, topic }, 'could not give a request back'),
        ),
      );
    } else if (this.#stopping) {
      callback(DEFER_ACK);
      this.#parked.push(held);
    } else if (this.#inbox.waiting) {
      // The worker is waiting: this is the doorbell, acknowledged on receipt (SPEC 6).
      held.acked = true;
      callback();
      this.#inbox.push(held);
    } else {
      callback(DEFER_ACK);
      this.#inbox.push(held);
    }
  }

  #deadLetterUnmatched(topic: string, payload: Buffer | string): void {
    const error = new JwError(
      ErrorCode.BAD_REQUEST,
      `topic ${topic} does not match the request topic ${this.#o.topic}`,
    );
    this.#logger.warn(
      { topic },
      'message on a topic this worker no longer takes requests from; dead-lettered',
    );
    const record = deadLetterRecord({
      error,
      workerId: this.#context!.workerId,
      topic,
      receivedAt: new Date(),
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      maxPayloadBytes: this.#o.deadLetterPayloadBytes,
    });
    this.#track(
      this.#publish(this.#o.topics.deadLetter, JSON.stringify(record), false).catch(() => {}),
    );
  }

  #isOwnOutput(topic: string): boolean {
    const t = this.#o.topics;
    return (
      [t.results, t.progress, t.workers].some((prefix) => topic.startsWith(`${prefix}/`)) ||
      topic === t.deadLetter
    );
  }

  #onCancel(topic: string, payload: Buffer | string): void {
    const id = idUnder(this.#o.topics.cancel, topic);
    if (!isValidJobId(id)) {
      this.#logger.warn({ topic }, 'ignored a cancel for an invalid job id');
      return;
    }
    let reason = 'cancel requested';
    try {
      const value = JSON.parse(String(payload)) as { reason?: unknown };
      if (typeof value?.reason === 'string') reason = value.reason;
    } catch {
      // Any payload (even an empty one) is a cancel; a JSON one may say why.
    }
    const cancelled = this.#context?.cancelJob(id, reason) ?? false;
    this.#logger.info(
      { jobId: id, cancelled },
      cancelled ? 'cancel received' : 'cancel for a job this worker does not run',
    );
  }

  /** PUBACK for a request the worker takes now; a no-op for QoS 0 and for a connection since lost. */
  #ack(held: Held): void {
    if (held.acked) return;
    held.acked = true;
    const client = this.#client;
    if (held.kind !== 'mqtt' || held.qos === 0 || held.messageId === undefined) return;
    if (!client?.connected || held.generation !== this.#generation) return;
    const packet = {
      cmd: 'puback',
      messageId: held.messageId,
      ...(this.#o.protocolVersion === 5 ? { reasonCode: 0 } : {}),
    };
    (client as unknown as { _sendPacket(packet: object): void })._sendPacket(packet);
  }

  /** Publishes a request again (to its own topic, so the broker routes it anew), then acknowledges it. */
  async #giveBack(held: Held): Promise<void> {
    if (held.kind !== 'mqtt') return;
    await this.#publish(held.topic, held.body, false);
    this.#ack(held);
    this.#logger.info({ topic: held.topic }, 'gave a request back to the broker');
  }

  /**
   * A clean session loses whatever the broker queued for it, and Mosquitto hands a
   * shared-subscription message to one member at publish time. So: unsubscribe, give
   * back what we hold, then publish a marker to ourselves: it is queued behind every
   * request the broker still had for us, so when it arrives all of them were given back.
   */
  async #drainCleanSession(held: Held[]): Promise<void> {
    const client = this.#client!;
    this.#draining = true;
    await client.unsubscribeAsync(this.#o.topic);
    for (const h of held) await this.#giveBack(h);
    const nonce = randomBytes(8).toString('hex');
    const arrived = new Promise<void>((resolve) => {
      this.#drainWaiter = { nonce, resolve };
    });
    await this.#publish(this.#drainTopic, nonce, false);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#logger.warn(
          {},
          'MQTT drain marker did not come back; some queued requests may be lost',
        );
        resolve();
      }, 10_000);
    });
    await Promise.race([arrived, timedOut]);
    clearTimeout(timer);
    await within(Promise.allSettled([...this.#pending]), 10_000);
  }

  // --- recovery ---------------------------------------------------------------------

  /** Jobs whose worker died (expired claim, or given back on shutdown) become deliveries of `{ id }`. */
  async #recover(): Promise<void> {
    if (this.#recovering || this.#stopping) return;
    this.#recovering = true;
    try {
      const context = this.#context!;
      const ids = await findStaleJobs(context.jobsDir);
      const active = new Set(context.activeJobs());
      for (const id of ids) {
        if (this.#stopping) break;
        if (active.has(id) || this.#recoveredOut.has(id)) continue;
        if (this.#inbox.some((h) => h.kind === 'recovered' && h.jobId === id)) continue;
        if (!(await runnableFromId(path.join(context.jobsDir, id)))) {
          if (!this.#unrunnable.has(id)) {
            this.#unrunnable.add(id);
            this.#logger.warn(
              { jobId: id },
              'job given back without job.json or a claim holding its request; waiting for its request to be published again',
            );
          }
          continue;
        }
        this.#logger.info({ jobId: id }, 'recovering a job whose worker died');
        this.#inbox.push({
          kind: 'recovered',
          body: Buffer.from(JSON.stringify({ id })),
          topic: 'recovery',
          qos: 0,
          messageId: undefined,
          generation: this.#generation,
          acked: true,
          receivedAt: new Date(),
          jobId: id,
        });
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'recovery scan failed');
    } finally {
      this.#recovering = false;
    }
  }

  // --- deliveries -------------------------------------------------------------------

  #delivery(held: Held): Delivery {
    const t = this.#o.topics;
    let settled = false;
    const settle = (what: string) => {
      if (settled) throw new Error(`delivery already settled (${what})`);
      settled = true;
      if (held.jobId !== undefined) this.#recoveredOut.delete(held.jobId);
    };
    return {
      body: held.body,
      label:
        held.kind === 'recovered'
          ? `recovered:${held.jobId}`
          : `${held.topic}#${held.messageId ?? 'q0'}`,
      onEvent: (event: JobEvent) => {
        if (!isValidJobId(event.jobId)) return;
        // Not awaited: a slow or absent broker must not hold up the job.
        this.#track(
          this.#publish(`${t.progress}/${event.jobId}`, JSON.stringify(event), false).catch(
            (error) =>
              this.#logger.debug(
                { err: error, jobId: event.jobId },
                'progress event not published',
              ),
          ),
        );
      },
      complete: async (result: ResultMessage) => {
        settle('complete');
        await this.#publishResult(result);
        this.#publishStatus();
      },
      reject: async (error: JwError, result: ResultMessage | undefined) => {
        settle('reject');
        this.#logger.warn(
          { err: error, topic: held.topic, jobId: error.jobId },
          'request rejected',
        );
        const record = deadLetterRecord({
          error,
          workerId: this.#context!.workerId,
          topic: held.topic,
          receivedAt: held.receivedAt,
          payload: held.body,
          maxPayloadBytes: this.#o.deadLetterPayloadBytes,
        });
        await Promise.all([
          result && isValidJobId(result.id) ? this.#publishResult(result) : undefined,
          this.#publish(t.deadLetter, JSON.stringify(record), false),
        ]);
      },
      release: async (reason: ReleaseReason, delayMs: number) => {
        settle('release');
        await this.#release(held, reason, delayMs);
      },
    };
  }

  async #release(held: Held, reason: ReleaseReason, delayMs: number): Promise<void> {
    const log = { topic: held.topic, jobId: held.jobId, reason, delayMs };
    if (reason === 'busy') {
      // Another worker holds a live claim. MQTT cannot redeliver later; the lease is the
      // safety net: if that worker dies, a recovery scan finds the job.
      this.#logger.info(log, 'job is claimed by another live worker; dropped this signal');
      return;
    }
    if (reason === 'shutdown') {
      // The job is marked `requeued` on the drive (recovery finds it); ring the bell again too.
      if (held.kind === 'mqtt') await this.#giveBack({ ...held, acked: true });
      return;
    }
    this.#logger.warn(log, 'job could not start; trying again later');
    const timer = setTimeout(() => {
      if (this.#stopping) {
        if (held.kind === 'mqtt')
          this.#track(this.#giveBack({ ...held, acked: true }).catch(() => {}));
        return;
      }
      this.#inbox.push({ ...held, acked: true });
    }, delayMs);
    timer.unref();
  }

  // --- outgoing ---------------------------------------------------------------------

  async #publishResult(result: ResultMessage): Promise<void> {
    await this.#publish(`${this.#o.topics.results}/${result.id}`, JSON.stringify(result), false);
  }

  #status(status: 'online' | 'offline') {
    const context = this.#context;
    return {
      version: STATUS_VERSION,
      workerId: context?.workerId,
      status,
      hostname: os.hostname(),
      pid: process.pid,
      transport: this.name,
      activeJobs: status === 'online' ? (context?.activeJobs() ?? []) : [],
      startedAt: this.#startedAt.toISOString(),
      at: new Date().toISOString(),
    };
  }

  #publishStatus(): void {
    // While disconnected nothing is queued: the status is published again on reconnect.
    if (this.#stopping || this.#failure || !this.#client?.connected) return;
    this.#track(
      this.#publish(this.#statusTopic, JSON.stringify(this.#status('online')), true).catch(
        (error) => this.#logger.debug({ err: error }, 'status not published'),
      ),
    );
  }

  #track<T>(promise: Promise<T>): void {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise));
  }

  /**
   * QoS 1 publish that resolves on the broker's PUBACK. While the broker is away mqtt.js
   * keeps the message and sends it after reconnecting; it rejects only when the
   * transport gives up.
   */
  #publish(topic: string, payload: string | Buffer, retain: boolean): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    // An empty retained message would delete the retained one instead of publishing.
    if (retain && payload.length === 0)
      return Promise.reject(new Error(`refusing to publish an empty retained message on ${topic}`));
    const client = this.#client!;
    const sent = client.publishAsync(topic, payload, { qos: 1, retain });
    const done = Promise.race([sent, this.#failed]).then(() => undefined);
    this.#track(done.catch(() => {}));
    return done;
  }
}

/**
 * Whether `{ id }` alone can run a stale job: its expired claim keeps the request that
 * started it (core runs that again), or it has a job.json. A job whose steps came in
 * the request and whose claim was released on shutdown cannot; its request is
 * published again by the worker that gave it back.
 */
async function runnableFromId(jobDir: string): Promise<boolean> {
  if ((await readClaim(path.join(jobDir, RESULTS_DIR)))?.request) return true;
  return access(path.join(jobDir, JOB_FILE)).then(
    () => true,
    () => false,
  );
}

/** Resolves true when `promise` settles within `ms`, false when the time runs out first. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export function createMqttTransport(
  options: MqttTransportOptions & { secretEnv?: readonly string[] },
): Transport {
  return new MqttTransport(options);
}
