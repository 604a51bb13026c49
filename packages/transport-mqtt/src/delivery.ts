import {
  type Delivery,
  isValidJobId,
  type JobEvent,
  type JwError,
  type ReleaseReason,
  type ResultMessage,
} from '@jw/core';
import { deadLetterRecord } from './dead-letter.js';
import { giveBack } from './drain.js';
import type { Held } from './held.js';
import type { Publisher } from './publisher.js';

export interface DeliveryHost {
  publisher: Publisher;
  /** Recovered jobs handed out and not yet settled. */
  recoveredOut: Set<string>;
  stopping(): boolean;
  /** Puts a request back in the inbox (a job that could not start, tried again later). */
  requeue(held: Held): void;
}

/** What the worker gets for a held request: settling it publishes, dead-letters or gives back. */
export function createDelivery(held: Held, host: DeliveryHost): Delivery {
  const { publisher } = host;
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
    onEvent: (event: JobEvent) => publisher.progress(event),
    complete: async (result: ResultMessage) => {
      settle('complete');
      await publisher.result(result);
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
  const { publisher } = host;
  const logger = publisher.session.logger;
  const log = { topic: held.topic, jobId: held.jobId, reason, delayMs };
  if (reason === 'busy') {
    // Another worker holds a live claim. MQTT cannot redeliver later; the lease is the
    // safety net: if that worker dies, a recovery scan finds the job.
    logger.info(log, 'job is claimed by another live worker; dropped this signal');
    return;
  }
  if (reason === 'shutdown') {
    // The job is marked `requeued` on the drive (recovery finds it); ring the bell again too.
    if (held.kind === 'mqtt') await giveBack(publisher, { ...held, acked: true });
    return;
  }
  logger.warn(log, 'job could not start; trying again later');
  const timer = setTimeout(() => {
    if (host.stopping()) {
      if (held.kind === 'mqtt')
        publisher.track(giveBack(publisher, { ...held, acked: true }).catch(() => {}));
      return;
    }
    host.requeue({ ...held, acked: true });
  }, delayMs);
  timer.unref();
}
