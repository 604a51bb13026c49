import { ErrorCode, JwError } from '@jw/core';
import type { Publisher } from './publisher.js';

/** What `jobs/dead` carries for a request that could not be run (SPEC 6). */
export interface DeadLetterRecord {
  reason: string;
  errorCode: string;
  /** The id, when the request had a valid one. */
  jobId?: string;
  workerId: string;
  /** The topic the request came on (`recovery` for a job found on the drive). */
  topic: string;
  receivedAt: string;
  /** Size of the raw payload in bytes. */
  payloadBytes: number;
  /** The raw payload as text when it is UTF-8 … */
  payload?: string;
  /** … else base64. */
  payloadBase64?: string;
  /** Set when the payload was cut to the configured limit. */
  truncated?: true;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function deadLetterRecord(input: {
  error: JwError;
  workerId: string;
  topic: string;
  receivedAt: Date;
  payload: Uint8Array;
  maxPayloadBytes: number;
}): DeadLetterRecord {
  const { error, payload } = input;
  const kept = payload.subarray(0, input.maxPayloadBytes);
  const record: DeadLetterRecord = {
    reason: error.message,
    errorCode: error.code,
    ...(error.jobId === undefined ? {} : { jobId: error.jobId }),
    workerId: input.workerId,
    topic: input.topic,
    receivedAt: input.receivedAt.toISOString(),
    payloadBytes: payload.byteLength,
  };
  try {
    // A cut can split a multi-byte character; text is only used when it decodes cleanly.
    record.payload = utf8.decode(kept);
  } catch {
    record.payloadBase64 = Buffer.from(kept).toString('base64');
  }
  if (kept.byteLength < payload.byteLength) record.truncated = true;
  return record;
}

/** A message on a topic the worker no longer takes requests from: recorded, not run. */
export function deadLetterUnmatched(publisher: Publisher, topic: string, payload: Buffer): void {
  const o = publisher.session.options;
  const error = new JwError(
    ErrorCode.BAD_REQUEST,
    `topic ${topic} does not match the request topic ${o.topic}`,
  );
  publisher.session.logger.warn(
    { topic },
    'message on a topic this worker no longer takes requests from; dead-lettered',
  );
  const record = deadLetterRecord({
    error,
    workerId: publisher.context.workerId,
    topic,
    receivedAt: new Date(),
    payload,
    maxPayloadBytes: o.deadLetterPayloadBytes,
  });
  publisher.track(
    publisher.publish(o.topics.deadLetter, JSON.stringify(record), false).catch(() => {}),
  );
}
