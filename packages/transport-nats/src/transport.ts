import {
  type Delivery,
  ErrorCode,
  JwError,
  type Logger,
  silentLogger,
  type Transport,
  type TransportContext,
} from '@jw/core';
import {
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { subscribeCancels } from './cancel.js';
import { openConnection } from './connection.js';
import { NatsDelivery } from './delivery.js';
import { Heartbeat } from './heartbeat.js';
import {
  type NatsTransportOptions,
  type ResolvedNatsOptions,
  resolveNatsOptions,
} from './options.js';
import { pause } from './pause.js';
import { PublishModes } from './publish-modes.js';
import { Publisher } from './publisher.js';
import { ensureConsumer, ensureStream } from './setup.js';
import { type Subjects, subjectsOf } from './subjects.js';

/** Env vars that hold NATS credentials; core keeps them out of steps. */
export const NATS_SECRET_ENV = ['NATS_PASSWORD', 'NATS_TOKEN', 'NATS_CREDS'] as const;

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

type Pulled = { msg: JsMsg } | { aborted: true };

class NatsTransport implements Transport {
  readonly name = 'nats';
  readonly secretEnv = NATS_SECRET_ENV;
  private readonly o: ResolvedNatsOptions;
  private readonly subjects: Subjects;
  private logger: Logger;
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private consumer: Consumer | undefined;
  private publisher: Publisher | undefined;
  private heartbeat: Heartbeat | undefined;
  private cancels: Subscription | undefined;
  private advisories: Subscription | undefined;
  private durable = '';
  private workerId = '';
  /** Between a disconnect and the reconnect, false. */
  private up = false;
  /** Pulls still open on the server; each gives back what it gets once nobody waits for it. */
  private readonly pulls = new Set<Promise<void>>();
  private readonly open = new Set<NatsDelivery>();

  constructor(options: NatsTransportOptions) {
    this.o = resolveNatsOptions(options);
    this.subjects = subjectsOf(this.o);
    this.logger = options.logger ?? silentLogger;
  }

  async start(context: TransportContext): Promise<void> {
    this.logger = context.logger;
    this.workerId = context.workerId;
    this.durable = this.o.durable ?? context.workerId;
    if (/[\s.*>]/.test(this.durable)) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `worker id ${this.durable} cannot name a durable consumer (no spaces, dots or wildcards)`,
      );
    }
    const nc = await openConnection(this.o, this.o.connectionName ?? `jw ${context.workerId}`, {
      signal: context.signal,
      logger: this.logger,
    });
    this.nc = nc;
    this.up = true;
    this.watchStatus(nc);
    // Account info is not asked for first: the stream's own request says whether JetStream is on.
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    this.jsm = jsm;
    this.js = jetstream(nc);
    const modes = new PublishModes(jsm, { families: [this.subjects.results] });
    this.advisories = modes.watch(nc, this.logger, (subject) =>
      this.logger.debug({ subject }, 'streams changed; publish modes are learnt again'),
    );
    // Learnt while the stream and consumer are checked, so the first result does not wait for it.
    modes.modeOf(this.subjects.result('_')).catch((error: unknown) => {
      this.logger.debug({ err: error }, 'publish mode of results not learnt yet');
    });
    try {
      await ensureStream(jsm, this.o, this.logger);
      this.consumer = await ensureConsumer(this.js, jsm, this.o, this.durable, this.logger);
    } catch (error) {
      await nc.close().catch(() => {});
      if (error instanceof JwError) throw error;
      throw new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `JetStream setup failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    this.publisher = new Publisher(nc, this.js, modes, this.logger);
    this.cancels = subscribeCancels(nc, this.subjects, context);
    this.heartbeat = new Heartbeat(
      this.publisher,
      this.subjects.status(context.workerId),
      context,
      this.o.heartbeatIntervalMs,
      this.o.version,
    );
    this.heartbeat.start();
    this.logger.info(
      {
        url: this.o.url,
        stream: this.o.stream,
        durable: this.durable,
        subject: this.o.inputSubject,
      },
      'listening for jobs',
    );
  }

  connected(): boolean {
    return this.up && this.nc !== undefined && !this.nc.isClosed();
  }

  private watchStatus(nc: NatsConnection): void {
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect') this.up = s.type === 'reconnect';
        if (s.type === 'disconnect') this.logger.warn({ server: s.server }, 'NATS connection lost');
        else if (s.type === 'reconnect') this.logger.info({ server: s.server }, 'NATS reconnected');
        else if (s.type === 'error') this.logger.warn({ err: s.error }, 'NATS error');
      }
    })().catch(() => {});
  }

  async next(signal: AbortSignal): Promise<Delivery | null> {
    let wait = RETRY_MIN_MS;
    while (!signal.aborted) {
      const nc = this.connection();
      let pulled: Pulled | null;
      try {
        pulled = await this.pullOne(signal);
      } catch (error) {
        if (nc.isClosed()) {
          throw new JwError(
            ErrorCode.TRANSPORT_FAILED,
            `NATS connection closed: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
        this.logger.warn({ err: error }, 'pull failed, retrying');
        await pause(wait, signal);
        wait = Math.min(wait * 2, RETRY_MAX_MS);
        // The consumer may have been deleted under us: make it again.
        await this.recreateConsumer();
        continue;
      }
      wait = RETRY_MIN_MS;
      if (pulled === null) continue;
      if ('aborted' in pulled) return null;
      return this.deliveryOf(pulled.msg);
    }
    return null;
  }

  /**
   * One pull for one message. Resolves `null` when the pull expired empty, or as
   * aborted when the signal fires first; a message that still arrives for an
   * aborted pull is nak'd so another worker gets it at once.
   */
  private pullOne(signal: AbortSignal): Promise<Pulled | null> {
    const consumer = this.consumer;
    if (!consumer)
      return Promise.reject(new JwError(ErrorCode.TRANSPORT_FAILED, 'transport not started'));
    return new Promise((resolve, reject) => {
      let answered = false;
      const answer = (value: Pulled | null) => {
        if (answered) return false;
        answered = true;
        signal.removeEventListener('abort', onAbort);
        resolve(value);
        return true;
      };
      let stopPull: (() => void) | undefined;
      const onAbort = () => {
        answer({ aborted: true });
        stopPull?.();
      };
      const pull = (async () => {
        const messages = await consumer.fetch({ max_messages: 1, expires: this.o.pullExpiresMs });
        stopPull = () => messages.stop();
        if (signal.aborted) messages.stop();
        for await (const msg of messages) {
          if (!answer({ msg })) {
            msg.nak();
            this.logger.debug(
              { seq: msg.seq },
              'gave back a message that arrived after the pull was abandoned',
            );
          }
        }
        answer(null);
      })().catch((error: unknown) => {
        if (answered) {
          this.logger.debug({ err: error }, 'abandoned pull failed');
          return;
        }
        answered = true;
        signal.removeEventListener('abort', onAbort);
        reject(error);
      });
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      this.pulls.add(pull);
      void pull.finally(() => this.pulls.delete(pull));
    });
  }

  private async recreateConsumer(): Promise<void> {
    if (!this.js || !this.jsm || this.nc?.isClosed()) return;
    try {
      await ensureStream(this.jsm, this.o, this.logger);
      this.consumer = await ensureConsumer(this.js, this.jsm, this.o, this.durable, this.logger);
    } catch (error) {
      this.logger.warn({ err: error }, 'cannot check the stream and consumer yet');
    }
  }

  private deliveryOf(msg: JsMsg): NatsDelivery {
    const delivery = new NatsDelivery(msg, {
      nc: this.connection(),
      publisher: this.publisher!,
      subjects: this.subjects,
      workerId: this.workerId,
      stream: this.o.stream,
      maxDeliver: this.o.maxDeliver,
      workingIntervalMs: this.o.workingIntervalMs,
      ackWaitMs: this.o.ackWaitMs,
      logger: this.logger,
      onSettled: (d) => this.open.delete(d),
    });
    this.open.add(delivery);
    return delivery;
  }

  private connection(): NatsConnection {
    if (!this.nc) throw new JwError(ErrorCode.TRANSPORT_FAILED, 'transport not started');
    return this.nc;
  }

  async stop(): Promise<void> {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    // Let abandoned pulls hand back what they caught before the connection goes.
    await Promise.allSettled([...this.pulls]);
    for (const delivery of this.open) {
      this.logger.warn({ delivery: delivery.label }, 'giving back an unsettled delivery');
      delivery.giveBack();
    }
    this.open.clear();
    this.heartbeat?.stop();
    this.cancels?.unsubscribe();
    this.advisories?.unsubscribe();
    try {
      await nc.drain();
    } catch (error) {
      this.logger.warn({ err: error }, 'NATS drain failed');
      await nc.close().catch(() => {});
    }
  }
}

/** The NATS JetStream transport: a durable pull consumer, one message per free slot. */
export function createNatsTransport(options: NatsTransportOptions = {}): Transport {
  return new NatsTransport(options);
}
