import { randomUUID } from 'node:crypto';
import {
  type Delivery,
  ErrorCode,
  JwError,
  type Logger,
  silentLogger,
  type Transport,
  type TransportContext,
} from '@jw/core';
import { openClient, type RedisClient } from './connection.js';
import { type DeliveryContext, RedisDelivery, touchIfOwned } from './delivery.js';
import { cancelledJobOf, type Keys, keysOf } from './keys.js';
import {
  type RedisTransportOptions,
  type ResolvedRedisOptions,
  resolveRedisOptions,
} from './options.js';

/** Env vars that hold Redis credentials; core keeps them out of steps. */
export const REDIS_SECRET_ENV = ['REDIS_PASSWORD', 'REDIS_URL'] as const;

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;
const UNBLOCK_EVERY_MS = 100;

interface Entry {
  id: string;
  message: Record<string, string>;
}
type StreamsReply = { name: string; messages: Entry[] }[] | null;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

class RedisTransport implements Transport {
  readonly name = 'redis';
  readonly secretEnv = REDIS_SECRET_ENV;
  private readonly o: ResolvedRedisOptions;
  private readonly keys: Keys;
  private logger: Logger;
  private workerId = '';
  /** Unique per process: a restarted worker's old entries go to whoever reclaims them. */
  private consumer = '';
  private client: RedisClient | undefined;
  /** Only for the blocking XREADGROUP: a blocked connection answers nothing else. */
  private reader: RedisClient | undefined;
  private readerId = 0;
  private subscriber: RedisClient | undefined;
  /** Where the next XAUTOCLAIM scan of the pending list goes on. */
  private claimCursor = '0-0';
  /** Reads still open on the server; each gives back what it gets once nobody waits for it. */
  private readonly reads = new Set<Promise<void>>();
  private readonly open = new Set<RedisDelivery>();

  constructor(options: RedisTransportOptions) {
    this.o = resolveRedisOptions(options);
    this.keys = keysOf(this.o.prefix);
    this.logger = options.logger ?? silentLogger;
  }

  async start(context: TransportContext): Promise<void> {
    this.logger = context.logger;
    this.workerId = context.workerId;
    this.consumer = `${context.workerId}-${randomUUID().slice(0, 8)}`;
    const name = `jw-${context.workerId}`.replace(/\s/g, '_');
    const opened: RedisClient[] = [];
    try {
      const client = await openClient(this.o, name, this.logger, context.signal);
      opened.push(client);
      this.client = client;
      await this.ensureGroup();
      const reader = await openClient(this.o, `${name}-reader`, this.logger, context.signal);
      opened.push(reader);
      this.reader = reader;
      this.readerId = await reader.clientId();
      reader.on('ready', () => {
        reader.clientId().then(
          (id) => {
            this.readerId = id;
          },
          () => {},
        );
      });
      const subscriber = await openClient(this.o, `${name}-cancel`, this.logger, context.signal);
      opened.push(subscriber);
      this.subscriber = subscriber;
      await subscriber.pSubscribe(this.keys.cancelPattern, (message, channel) => {
        const jobId = cancelledJobOf(this.keys, channel);
        if (jobId && context.cancelJob(jobId, message || 'cancelled through redis'))
          this.logger.info({ jobId }, 'cancel requested');
      });
    } catch (error) {
      for (const c of opened) c.destroy();
      if (error instanceof JwError) throw error;
      throw new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `redis setup failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    this.logger.info(
      { stream: this.keys.requests, group: this.o.group, consumer: this.consumer },
      'listening for jobs',
    );
  }

  /** Creates the group (and the stream) when missing; from the start, so requests sent before any worker ran are taken. */
  private async ensureGroup(): Promise<void> {
    try {
      await this.connection().xGroupCreate(this.keys.requests, this.o.group, '0', {
        MKSTREAM: true,
      });
      this.logger.info(
        { stream: this.keys.requests, group: this.o.group },
        'consumer group created',
      );
    } catch (error) {
      if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error;
    }
  }

  async next(signal: AbortSignal): Promise<Delivery | null> {
    let wait = RETRY_MIN_MS;
    while (!signal.aborted) {
      try {
        const reclaimed = await this.reclaimOne();
        if (reclaimed) {
          if (!signal.aborted) return this.deliveryOf(reclaimed, true);
          await this.giveBack(reclaimed.id);
          return null;
        }
        const fresh = await this.readOne(signal);
        if (fresh === 'aborted') return null;
        if (fresh) return this.deliveryOf(fresh, false);
        wait = RETRY_MIN_MS;
      } catch (error) {
        if (!this.client?.isOpen || !this.reader?.isOpen) {
          throw new JwError(
            ErrorCode.TRANSPORT_FAILED,
            `redis connection closed: ${(error as Error).message}`,
            { cause: error },
          );
        }
        this.logger.warn({ err: error }, 'reading requests failed, retrying');
        await pause(wait, signal);
        wait = Math.min(wait * 2, RETRY_MAX_MS);
        // The group may have been deleted under us (NOGROUP): make it again.
        if (String((error as Error).message).startsWith('NOGROUP'))
          await this.ensureGroup().catch(() => {});
      }
    }
    return null;
  }

  /** One entry that has been pending longer than the claim idle time: its worker died or stalled. */
  private async reclaimOne(): Promise<Entry | undefined> {
    const reply = await this.connection().xAutoClaim(
      this.keys.requests,
      this.o.group,
      this.consumer,
      this.o.claimIdleMs,
      this.claimCursor,
      { COUNT: 1 },
    );
    this.claimCursor = reply.nextId;
    if (reply.deletedMessages.length > 0) {
      this.logger.warn(
        { entries: reply.deletedMessages },
        'pending requests were deleted from the stream before they ran',
      );
    }
    const entry = reply.messages.find((m) => m !== null);
    return entry
      ? { id: entry.id, message: { ...entry.message } as Record<string, string> }
      : undefined;
  }

  /**
   * One XREADGROUP for one new entry. Resolves `null` when it timed out empty, or
   * `aborted` when the signal fires first; the blocked read is then cut short with
   * CLIENT UNBLOCK, and an entry it still got is given back at once.
   */
  private readOne(signal: AbortSignal): Promise<Entry | null | 'aborted'> {
    const reader = this.reader;
    if (!reader)
      return Promise.reject(new JwError(ErrorCode.TRANSPORT_FAILED, 'transport not started'));
    return new Promise((resolve, reject) => {
      let answered = false;
      let unblocking: NodeJS.Timeout | undefined;
      const onAbort = () => {
        if (answered) return;
        answered = true;
        resolve('aborted');
        const unblock = () => void this.unblockReader();
        unblock();
        unblocking = setInterval(unblock, UNBLOCK_EVERY_MS);
      };
      const done = () => {
        clearInterval(unblocking);
        signal.removeEventListener('abort', onAbort);
      };
      const read = (
        reader.xReadGroup(
          this.o.group,
          this.consumer,
          { key: this.keys.requests, id: '>' },
          { COUNT: 1, BLOCK: this.o.blockMs },
        ) as Promise<StreamsReply>
      ).then(
        async (reply) => {
          done();
          const entry = reply?.[0]?.messages[0];
          if (!answered) {
            answered = true;
            resolve(entry ? { id: entry.id, message: { ...entry.message } } : null);
          } else if (entry) {
            this.logger.debug(
              { entry: entry.id },
              'gave back an entry read after its next() gave up',
            );
            await this.giveBack(entry.id);
          }
        },
        (error: unknown) => {
          done();
          if (answered) this.logger.debug({ err: error }, 'abandoned read failed');
          else {
            answered = true;
            reject(error);
          }
        },
      );
      this.reads.add(read);
      void read.finally(() => this.reads.delete(read));
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
    });
  }

  private async unblockReader(): Promise<void> {
    await this.client?.sendCommand(['CLIENT', 'UNBLOCK', String(this.readerId)]).catch(() => {});
  }

  /** Makes an entry nobody runs claimable by the next XAUTOCLAIM of any worker, now. */
  private async giveBack(entryId: string): Promise<void> {
    await touchIfOwned(this.deliveryContext(), entryId, this.o.claimIdleMs).catch(
      (error: unknown) =>
        this.logger.warn(
          { err: error, entry: entryId },
          'give back failed; the entry comes back after the claim idle time',
        ),
    );
  }

  private deliveryContext(): DeliveryContext {
    return {
      client: this.connection(),
      keys: this.keys,
      group: this.o.group,
      consumer: this.consumer,
      workerId: this.workerId,
      claimIdleMs: this.o.claimIdleMs,
      resultTtlSeconds: this.o.resultTtlSeconds,
      logger: this.logger,
      onSettled: (d) => this.open.delete(d),
    };
  }

  private deliveryOf(entry: Entry, reclaimed: boolean): RedisDelivery {
    const delivery = new RedisDelivery(
      entry.id,
      entry.message.body ?? '',
      reclaimed,
      this.deliveryContext(),
    );
    this.open.add(delivery);
    return delivery;
  }

  private connection(): RedisClient {
    if (!this.client) throw new JwError(ErrorCode.TRANSPORT_FAILED, 'transport not started');
    return this.client;
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client?.isOpen) return;
    // Let abandoned reads hand back what they caught before the connections go.
    const unblocking = setInterval(() => void this.unblockReader(), UNBLOCK_EVERY_MS);
    void this.unblockReader();
    await Promise.allSettled([...this.reads]);
    clearInterval(unblocking);
    for (const delivery of this.open) {
      this.logger.warn({ delivery: delivery.label }, 'giving back an unsettled delivery');
      await delivery.giveBack();
    }
    this.open.clear();
    await this.forgetConsumer();
    for (const c of [this.subscriber, this.reader, client]) {
      await c?.close().catch(() => c.destroy());
    }
  }

  /** A consumer with nothing pending is not needed any more (its name is never used again). */
  private async forgetConsumer(): Promise<void> {
    try {
      const pending = await this.connection().xPendingRange(
        this.keys.requests,
        this.o.group,
        '-',
        '+',
        1,
        { consumer: this.consumer },
      );
      if (pending.length === 0)
        await this.connection().xGroupDelConsumer(this.keys.requests, this.o.group, this.consumer);
    } catch (error) {
      this.logger.debug({ err: error }, 'consumer not removed');
    }
  }
}

/** The Redis Streams transport: one consumer group, one entry per free slot. */
export function createRedisTransport(options: RedisTransportOptions = {}): Transport {
  return new RedisTransport(options);
}
