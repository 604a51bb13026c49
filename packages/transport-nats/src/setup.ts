import { ErrorCode, JwError, type Logger } from '@jw/core';
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { isConsumerNotFound, isStreamNotFound } from './api-errors.js';
import type { ResolvedNatsOptions } from './options.js';
import { subjectMatches } from './subjects.js';

/**
 * Makes sure the request stream exists and captures the input subject. A stream we
 * create is a work queue (a job is removed once acked) that also keeps dead letters.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  o: ResolvedNatsOptions,
  logger: Logger,
): Promise<void> {
  let subjects: string[];
  try {
    subjects = (await jsm.streams.info(o.stream)).config.subjects ?? [];
  } catch (error) {
    if (!isStreamNotFound(error)) throw error;
    // Dead letters go into the new stream unless some stream (another queue's) already keeps them.
    const deadKept =
      subjectMatches(o.inputSubject, o.deadLetterSubject) ||
      (await jsm.streams.find(o.deadLetterSubject).then(
        () => true,
        (findError: unknown) => {
          if (isStreamNotFound(findError)) return false;
          throw findError;
        },
      ));
    const wanted = deadKept ? [o.inputSubject] : [o.inputSubject, o.deadLetterSubject];
    try {
      await jsm.streams.add({
        name: o.stream,
        subjects: wanted,
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
      });
      logger.info({ stream: o.stream, subjects: wanted }, 'created stream');
      subjects = wanted;
    } catch (addError) {
      // Another worker may have created it at the same moment with other settings.
      subjects =
        (await jsm.streams.info(o.stream).catch(() => Promise.reject(addError))).config.subjects ??
        [];
    }
  }
  if (!subjects.some((s) => subjectMatches(s, o.inputSubject))) {
    throw new JwError(
      ErrorCode.BAD_CONFIG,
      `stream ${o.stream} does not capture ${o.inputSubject} (its subjects: ${subjects.join(', ')})`,
    );
  }
}

/** Server codes for a second consumer on the same subjects of a work-queue stream. */
const WORK_QUEUE_CONFLICTS = new Set([10099, 10100]);

function wantedConsumer(o: ResolvedNatsOptions, durable: string): Partial<ConsumerConfig> {
  return {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(o.ackWaitMs),
    max_deliver: o.maxDeliver,
    filter_subject: o.inputSubject,
  };
}

/** Creates the durable pull consumer when missing, or brings its ack wait, max deliver and filter in line. */
export async function ensureConsumer(
  js: JetStreamClient,
  jsm: JetStreamManager,
  o: ResolvedNatsOptions,
  durable: string,
  logger: Logger,
): Promise<Consumer> {
  const wanted = wantedConsumer(o, durable);
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.info(o.stream, durable);
    const c = info.config;
    if (
      c.ack_wait !== wanted.ack_wait ||
      c.max_deliver !== wanted.max_deliver ||
      (c.filter_subject ?? '') !== wanted.filter_subject
    ) {
      try {
        info = await jsm.consumers.update(o.stream, durable, {
          ack_wait: wanted.ack_wait,
          max_deliver: wanted.max_deliver,
          filter_subject: wanted.filter_subject,
        });
        logger.info(
          { durable, ackWaitMs: o.ackWaitMs, maxDeliver: o.maxDeliver },
          'updated consumer',
        );
      } catch (error) {
        throw new JwError(
          ErrorCode.BAD_CONFIG,
          `consumer ${durable} on ${o.stream} exists with other settings and cannot be updated: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
  } catch (error) {
    if (!isConsumerNotFound(error)) throw error;
    try {
      info = await jsm.consumers.add(o.stream, wanted);
    } catch (addError) {
      if (addError instanceof JetStreamApiError && WORK_QUEUE_CONFLICTS.has(addError.code)) {
        throw new JwError(
          ErrorCode.BAD_CONFIG,
          `stream ${o.stream} is a work queue and another consumer already takes ${o.inputSubject}: ` +
            `run every worker of this queue with the same --id, or give this one its own stream (${addError.message})`,
          { cause: addError },
        );
      }
      throw addError;
    }
    logger.info({ durable, stream: o.stream, ackWaitMs: o.ackWaitMs }, 'created durable consumer');
  }
  // From the info in hand: `consumers.get` would ask for it once more.
  return js.consumers.getConsumerFromInfo(info);
}
