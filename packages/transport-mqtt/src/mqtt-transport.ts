import {
  type Delivery,
  ErrorCode,
  JwError,
  type Logger,
  type Transport,
  type TransportContext,
} from '@jw/core';
import type { IConnackPacket, IPublishPacket } from 'mqtt';
import { Acks } from './acks.js';
import { onCancel } from './cancel.js';
import { deadLetterUnmatched } from './dead-letter.js';
import { createDelivery } from './delivery.js';
import { CleanDrain, giveBack } from './drain.js';
import { DEFER_ACK, type Held, heldFromPacket } from './held.js';
import { Inbox } from './inbox.js';
import { type MqttTransportOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Publisher } from './publisher.js';
import { Recovery } from './recovery.js';
import { clientOptions, Session } from './session.js';
import { statusMessage } from './status.js';
import { isSafeTopicLevel, topicMatches } from './topics.js';
import { within } from './within.js';

/** How long saying goodbye (give-backs, drain, offline status) may take at most. */
const STOP_LIMIT_MS = 30_000;

/**
 * Requests come on an MQTT topic and are acknowledged once their job is claimed on the
 * shared drive (SPEC 6); a recovery scan finds jobs of dead workers. This class routes
 * incoming messages and wires the parts: `session` (connection, generations), `acks`
 * (PUBACKs, re-sent copies), `publisher` (results, progress, status), `recovery`,
 * `drain` (giving requests back).
 */
export class MqttTransport implements Transport {
  readonly name = 'mqtt';
  readonly secretEnv: readonly string[];
  readonly #o: ResolvedOptions;
  // A recovered job holds a claim (others skip it): it goes first.
  readonly #inbox = new Inbox<Held>((h) => h.claim !== undefined);
  /** Requests that arrived while stopping on a persistent session: left unacknowledged. */
  readonly #parked: Held[] = [];
  readonly #timers: NodeJS.Timeout[] = [];
  #session: Session | undefined;
  #acks: Acks | undefined;
  #publisher: Publisher | undefined;
  #recovery: Recovery | undefined;
  #drain: CleanDrain | undefined;
  #context: TransportContext | undefined;
  #log: Logger | undefined;
  #stopping = false;
  #stopped = false;

  constructor(options: MqttTransportOptions & { secretEnv?: readonly string[] }) {
    this.#o = resolveOptions(options);
    this.secretEnv = options.secretEnv ?? ['MQTT_PASSWORD'];
  }

  /** Whether the broker connection is up now (readiness, the `jw_broker_connected` metric). */
  connected(): boolean {
    return this.#session?.connected ?? false;
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
    const startedAt = new Date();
    const session = new Session(
      o,
      clientOptions(o, {
        clientId,
        concurrency: context.concurrency,
        will: {
          topic: `${o.topics.workers}/${context.workerId}/status`,
          payload: Buffer.from(statusMessage(context, 'offline', startedAt)),
        },
      }),
      context.logger,
      {
        onConnack: (connack) => this.#acks?.onConnack(connack.sessionPresent),
        onConnect: (connack, wasDown) => this.#onConnect(connack, wasDown),
        onFail: (error) => this.#inbox.fail(error),
      },
    );
    this.#session = session;
    const acks = new Acks(session);
    this.#acks = acks;
    const publisher = new Publisher(session, context, startedAt);
    this.#publisher = publisher;
    const drain = new CleanDrain(publisher, acks, `${o.topics.workers}/${context.workerId}/drain`);
    this.#drain = drain;
    this.#recovery = new Recovery(
      context,
      this.#inbox,
      () => this.#stopping,
      () => session.generation,
    );
    session.client.handleMessage = (packet, callback) => this.#onPublish(packet, callback);

    await session.connect(context.signal);
    const filters: Record<string, { qos: 0 | 1 }> = {
      [o.topic]: { qos: 1 },
      // QoS 0: a cancel must get through while unacknowledged requests fill the receive window.
      [`${o.topics.cancel}/+`]: { qos: 0 },
    };
    if (o.clean) filters[drain.topic] = { qos: 1 };
    let granted: { topic: string; qos: number }[];
    try {
      granted = await session.client.subscribeAsync(filters);
    } catch (error) {
      await session.client.endAsync(true);
      throw new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `MQTT subscribe failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const refused = granted.filter((g) => g.qos >= 128).map((g) => g.topic);
    if (refused.length > 0) {
      await session.client.endAsync(true);
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `MQTT broker refused the subscription to ${refused.join(', ')}`,
      );
    }
    this.#logger.info(
      { url: o.url, topic: o.topic, clientId, clean: o.clean, protocolVersion: o.protocolVersion },
      'MQTT connected and subscribed',
    );
    publisher.online();

    this.#every(o.heartbeatIntervalMs, () => publisher.online());
    if (o.giveUpAfterMs > 0)
      this.#every(Math.min(1000, o.giveUpAfterMs / 4), () => session.checkGiveUp());
    if (o.recover) {
      const recovery = this.#recovery;
      // Not awaited: the scan must not delay the request this worker was started for.
      void recovery.scan();
      this.#every(o.recoverIntervalMs, () => void recovery.scan());
    }
  }

  async next(signal: AbortSignal): Promise<Delivery | null> {
    if (this.#stopping) return null;
    // A slot is free: a stale job found by the last scan takes it before new requests.
    await this.#recovery?.offer();
    const held = await this.#inbox.take(signal);
    if (!held) return null;
    return createDelivery(held, {
      publisher: this.#publisher!,
      acks: this.#acks!,
      recoveredOut: this.#recovery!.out,
      stopping: () => this.#stopping,
      requeue: (h) => this.#inbox.push(h),
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#inbox.close();
    const session = this.#session;
    const publisher = this.#publisher;
    if (!session || !publisher) return;
    session.quiet();
    publisher.stop();
    const client = session.client;
    await this.#recovery?.idle();
    const all = [...this.#inbox.drain(), ...this.#parked.splice(0)];
    // Claims taken for recovered jobs never handed over: the next worker takes them at once.
    await Promise.all(all.map((h) => h.claim?.claim.expire().catch(() => {})));
    for (const h of all) if (h.jobId !== undefined) this.#recovery?.out.delete(h.jobId);
    const held = all.filter((h) => h.kind === 'mqtt');
    const acks = this.#acks!;
    if (!session.failure && client.connected) {
      const goodbye = async () => {
        if (this.#o.clean) {
          await this.#drain!.run(held);
          for (const h of held) acks.forget(h);
        } else {
          // Unacknowledged requests stay in the persistent session for the next start;
          // those the broker no longer holds (QoS 0, or from a session it lost) go back.
          for (const h of held) {
            if (h.qos === 0 || h.generation < session.sessionStart)
              await giveBack(publisher, acks, h);
            else acks.forget(h);
          }
        }
        await publisher.offline();
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
    if (client.connected) await publisher.settled(10_000);
    // A normal DISCONNECT: the broker drops the will, since the status already says offline.
    const force = session.failure !== undefined || !client.connected;
    const ended = await within(client.endAsync(force), 5_000).catch(() => true);
    if (!ended) await client.endAsync(true).catch(() => {});
  }

  #every(ms: number, fn: () => void): void {
    if (ms <= 0) return;
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  #onConnect(connack: IConnackPacket, wasDown: boolean): void {
    if (wasDown) {
      this.#logger.info({ sessionPresent: connack.sessionPresent }, 'MQTT reconnected');
      this.#publisher?.online();
    }
  }

  #onPublish(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const o = this.#o;
    const topic = packet.topic;
    const payload =
      typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (topic.startsWith(`${o.topics.cancel}/`)) {
      callback();
      onCancel(this.#context!, this.#o.topics.cancel, topic, payload);
      return;
    }
    if (topic === this.#drain!.topic) {
      callback();
      this.#drain!.onMarker(payload);
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
      deadLetterUnmatched(this.#publisher!, topic, payload);
      return;
    }
    const held = heldFromPacket(packet, this.#session!.generation);
    const acks = this.#acks!;
    switch (acks.arrived(packet, held.body)) {
      case 'merged':
        callback(DEFER_ACK);
        this.#logger.debug({ topic, messageId: packet.messageId }, 'held request re-sent');
        return;
      case 'acked':
        callback();
        return;
      case 'new':
        break;
    }
    // Never acknowledged here: the PUBACK waits for the job's claim (SPEC 6).
    callback(held.acked ? undefined : DEFER_ACK);
    acks.hold(held);
    if (this.#drain!.draining) {
      this.#publisher!.track(
        giveBack(this.#publisher!, acks, held).catch((error) =>
          this.#logger.warn({ err: error, topic }, 'could not give a request back'),
        ),
      );
    } else if (this.#stopping) {
      this.#parked.push(held);
    } else {
      this.#inbox.push(held);
    }
  }

  #isOwnOutput(topic: string): boolean {
    const t = this.#o.topics;
    return (
      [t.results, t.progress, t.workers].some((prefix) => topic.startsWith(`${prefix}/`)) ||
      topic === t.deadLetter
    );
  }
}

export function createMqttTransport(
  options: MqttTransportOptions & { secretEnv?: readonly string[] },
): Transport {
  return new MqttTransport(options);
}
