import {
  type Delivery,
  isValidJobId,
  type JobEvent,
  type JwError,
  type ReleaseReason,
  type ResultMessage,
} from '@jw/core';
import type { Acks } from './acks.js';
import { deadLetterRecord } from './dead-letter.js';
import { giveBack } from './drain.js';
import type { Held } from './held.js';
import type { Publisher } from './publisher.js';

export interface DeliveryHost {
  publisher: Publisher;
  acks: Acks;
  /** Recovered jobs handed out and not yet settled. */
  recoveredOut: Set<string>;
  stopping(): boolean;
  /** Puts a request back in the inbox (a job that could not start, tried again later). */
  requeue(held: Held): void;
}

/**
 * What the worker gets for a held request. Its PUBACK goes out once the job is claimed
 * (SPEC 6); a delivery that never claims (a replay, a bad request or job, a job another
 * worker holds) is acknowledged when it is settled, after what it publishes.
 */
export function createDelivery(held: Held, host: DeliveryHost): Delivery {
  const { publisher, acks } = host;
  const { options: o, logger } = publisher.session;
  let settled = false;
  const settle = (what: string) => {
    if (settled) throw new Error(`delivery already settled (${what})`);
    settled = true;
    if (held.jobId !== undefined) host.recoveredOut.delete(held.jobId);
  };
  return {
    body: held.body,
    label:
      held.kind === 'recovered'
        ? `recovered:${held.jobId}`
        : `${held.topic}#${held.messageId ?? 'q0'}`,
    ...(held.claim ? { claim: held.claim } : {}),
    onEvent: (event: JobEvent) => publisher.progress(event),
    claimed: () => acks.ack(held),
    complete: async (result: ResultMessage) => {
      settle('complete');
      // Resolves on the broker's PUBACK: core keeps the claim until then (SPEC 6).
      await publisher.result(result);
      acks.ack(held);
      publisher.online();
    },
    reject: async (error: JwError, result: ResultMessage | undefined) => {
      settle('reject');
      logger.warn({ err: error, topic: held.topic, jobId: error.jobId }, 'request rejected');
      const record = deadLetterRecord({
        error,
        workerId: publisher.context.workerId,
        topic: held.topic,
        receivedAt: held.receivedAt,
        payload: held.body,
        maxPayloadBytes: o.deadLetterPayloadBytes,
      });
      await Promise.all([
        result && isValidJobId(result.id) ? publisher.result(result) : undefined,
        publisher.publish(o.topics.deadLetter, JSON.stringify(record), false),
      ]);
      acks.ack(held);
    },
    release: async (reason: ReleaseReason, delayMs: number) => {
      settle('release');
      await release(held, host, reason, delayMs);
    },
  };
}

async function release(
  held: Held,
  host: DeliveryHost,
  reason: ReleaseReason,
  delayMs: number,
): Promise<void> {
  const { publisher, acks } = host;
  const logger = publisher.session.logger;
  const log = { topic: held.topic, jobId: held.jobId, reason, delayMs };
  if (reason === 'busy') {
    // Another worker holds a live claim. MQTT cannot redeliver later; the lease is the
    // safety net: if that worker dies, a recovery scan finds the job.
    logger.info(log, 'job is claimed by another live worker; dropped this signal');
    acks.ack(held);
    return;
  }
  if (reason === 'shutdown') {
    // The job is marked `requeued` on the drive (recovery finds it); ring the bell again too.
    if (held.kind === 'mqtt') await giveBack(publisher, acks, held);
    return;
  }
  logger.warn(log, 'job could not start; trying again later');
  if (held.kind === 'recovered') {
    // Found again by a later scan once its claim has expired.
    await held.claim?.claim.expire();
    return;
  }
  const timer = setTimeout(() => {
    if (host.stopping()) {
      publisher.track(giveBack(publisher, acks, held).catch(() => {}));
      return;
    }
    host.requeue(held);
  }, delayMs);
  timer.unref();
}
