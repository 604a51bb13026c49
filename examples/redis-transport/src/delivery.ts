import type {
  Delivery,
  JobEvent,
  JwError,
  Logger,
  Manifest,
  ReleaseReason,
  ResultMessage,
} from '@jw/core';
import type { RedisClient } from './connection.js';
import type { Keys } from './keys.js';

export interface DeliveryContext {
  client: RedisClient;
  keys: Keys;
  group: string;
  consumer: string;
  workerId: string;
  claimIdleMs: number;
  resultTtlSeconds: number;
  logger: Logger;
  onSettled(delivery: RedisDelivery): void;
}

/**
 * Resets the idle time of a pending entry to ARGV[4] ms, only while this consumer owns
 * it: once another worker has taken it over (we stalled past the claim idle time), a
 * keepalive must not take it back. Returns 1 when it still was ours.
 */
const TOUCH_IF_OWNED = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1`;

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

/** Sets an owned entry's idle time: 0 keeps it ours, `claimIdleMs` hands it to the next XAUTOCLAIM. */
export async function touchIfOwned(
  ctx: Pick<DeliveryContext, 'client' | 'keys' | 'group' | 'consumer'>,
  entryId: string,
  idleMs: number,
): Promise<boolean> {
  const owned = await ctx.client.eval(TOUCH_IF_OWNED, {
    keys: [ctx.keys.requests],
    arguments: [ctx.group, ctx.consumer, entryId, String(Math.max(0, Math.round(idleMs)))],
  });
  return owned === 1;
}

/**
 * One stream entry held in this consumer's pending list while its job runs: kept alive
 * on its own timer, acknowledged (XACK) in the same transaction that appends the result,
 * given back by setting its idle time so that XAUTOCLAIM hands it out after the delay.
 */
export class RedisDelivery implements Delivery {
  readonly label: string;
  private readonly keepAlive: NodeJS.Timeout;
  private settled = false;
  private lost = false;

  constructor(
    readonly entryId: string,
    readonly body: string,
    reclaimed: boolean,
    private readonly ctx: DeliveryContext,
  ) {
    this.label = `${ctx.keys.requests}#${entryId}${reclaimed ? ' (reclaimed)' : ''}`;
    this.keepAlive = setInterval(() => void this.touch(), Math.floor(ctx.claimIdleMs / 3));
  }

  private async touch(): Promise<void> {
    try {
      if (await touchIfOwned(this.ctx, this.entryId, 0)) return;
      if (!this.lost && !this.settled) {
        // The claim on the drive still keeps the job from running twice; this only loses the race to ack.
        this.ctx.logger.warn({ delivery: this.label }, 'delivery taken over by another worker');
      }
      this.lost = true;
    } catch (error) {
      this.ctx.logger.warn({ err: error, delivery: this.label }, 'keepalive failed');
    }
  }

  onEvent(event: JobEvent): void {
    this.ctx.client
      .publish(this.ctx.keys.progress(event.jobId), JSON.stringify(event))
      .catch((error: unknown) =>
        this.ctx.logger.debug({ err: error, delivery: this.label }, 'progress not published'),
      );
  }

  async complete(result: ResultMessage, _manifest: Manifest | undefined): Promise<void> {
    this.settling('complete');
    try {
      await this.persist('result', () => {
        const tx = this.ctx.client.multi();
        this.appendResult(tx, result);
        return tx.xAck(this.ctx.keys.requests, this.ctx.group, this.entryId).exec();
      });
      this.ctx.logger.debug({ jobId: result.id, delivery: this.label }, 'result published');
    } finally {
      this.finish();
    }
  }

  async reject(error: JwError, result: ResultMessage | undefined): Promise<void> {
    this.settling('reject');
    try {
      await this.persist('dead letter', () => {
        const tx = this.ctx.client.multi();
        if (result) this.appendResult(tx, result);
        return tx
          .xAdd(this.ctx.keys.deadLetter, '*', {
            body: this.body,
            code: error.code,
            reason: error.message,
            worker: this.ctx.workerId,
            entry: this.entryId,
          })
          .xAck(this.ctx.keys.requests, this.ctx.group, this.entryId)
          .exec();
      });
      this.ctx.logger.warn(
        { code: error.code, reason: error.message, delivery: this.label },
        'request dead-lettered',
      );
    } finally {
      this.finish();
    }
  }

  async release(reason: ReleaseReason, delayMs: number): Promise<void> {
    this.settling('release');
    try {
      // A shutdown gives it back at once; a busy job comes back after the rest of its lease.
      const wait = reason === 'shutdown' ? 0 : Math.min(delayMs, this.ctx.claimIdleMs);
      clearInterval(this.keepAlive);
      await this.persist('release', () =>
        touchIfOwned(this.ctx, this.entryId, this.ctx.claimIdleMs - wait),
      );
      this.ctx.logger.debug({ delivery: this.label, reason, delayMs: wait }, 'given back');
    } finally {
      this.finish();
    }
  }

  /** Gives back an entry the worker never settled (stop() before settlement). */
  async giveBack(): Promise<void> {
    this.settled = true;
    clearInterval(this.keepAlive);
    await touchIfOwned(this.ctx, this.entryId, this.ctx.claimIdleMs).catch(() => false);
  }

  private appendResult(tx: ReturnType<RedisClient['multi']>, result: ResultMessage): void {
    const key = this.ctx.keys.result(result.id);
    tx.xAdd(key, '*', { body: JSON.stringify(result) });
    if (this.ctx.resultTtlSeconds > 0) tx.expire(key, this.ctx.resultTtlSeconds);
  }

  /**
   * Retries through a lost connection. Gives up after twice the claim idle time: the entry
   * is still pending then, so another worker takes it, finds the final result.json and
   * publishes the result again.
   */
  private async persist(what: string, op: () => Promise<unknown>): Promise<void> {
    const giveUpAt = Date.now() + 2 * Math.max(this.ctx.claimIdleMs, 5_000);
    let wait = RETRY_MIN_MS;
    for (;;) {
      try {
        await op();
        return;
      } catch (error) {
        if (Date.now() >= giveUpAt) {
          this.ctx.logger.warn(
            { err: error, delivery: this.label },
            `${what} not stored, left pending`,
          );
          return;
        }
        this.ctx.logger.debug(
          { err: error, delivery: this.label },
          `${what} not stored yet, retrying`,
        );
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(wait * 2, RETRY_MAX_MS);
      }
    }
  }

  private settling(how: string): void {
    if (this.settled) throw new Error(`delivery ${this.label} is already settled (${how})`);
    this.settled = true;
  }

  private finish(): void {
    clearInterval(this.keepAlive);
    this.ctx.onSettled(this);
  }
}
