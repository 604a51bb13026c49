import type { TransportContext } from '@jw/core';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Subjects } from './subjects.js';

/**
 * Listens on `jobs.cancel.*`. Every worker hears every cancel; the one that runs
 * the job stops it and, for a request-reply cancel, is the only one to answer.
 * The body may carry `{"reason": "..."}`.
 */
export function subscribeCancels(
  nc: NatsConnection,
  subjects: Subjects,
  context: TransportContext,
): Subscription {
  return nc.subscribe(subjects.cancelFilter, {
    callback: (error, msg) => {
      if (error) {
        context.logger.warn({ err: error }, 'cancel subscription failed');
        return;
      }
      const jobId = subjects.cancelledJob(msg.subject);
      if (jobId === undefined) return;
      const reason = reasonOf(msg.data);
      const cancelled = context.cancelJob(jobId, reason);
      context.logger.info({ jobId, cancelled, reason }, 'cancel received');
      if (cancelled && msg.reply)
        msg.respond(JSON.stringify({ id: jobId, cancelled, workerId: context.workerId }));
    },
  });
}

function reasonOf(data: Uint8Array): string | undefined {
  if (data.byteLength === 0) return undefined;
  try {
    const value = JSON.parse(Buffer.from(data).toString('utf8')) as { reason?: unknown };
    return typeof value?.reason === 'string' ? value.reason : undefined;
  } catch {
    return undefined;
  }
}
