import { isValidJobId, type TransportContext } from '@jw/core';
import { idUnder } from './topics.js';

/** A message on `{cancel}/{id}`: any payload cancels, a JSON one may say why. */
export function onCancel(
  context: TransportContext,
  prefix: string,
  topic: string,
  payload: Buffer,
): void {
  const logger = context.logger;
  const id = idUnder(prefix, topic);
  if (!isValidJobId(id)) {
    logger.warn({ topic }, 'ignored a cancel for an invalid job id');
    return;
  }
  let reason = 'cancel requested';
  try {
    const value = JSON.parse(String(payload)) as { reason?: unknown };
    if (typeof value?.reason === 'string') reason = value.reason;
  } catch {
    // Any payload (even an empty one) is a cancel; a JSON one may say why.
  }
  const cancelled = context.cancelJob(id, reason);
  logger.info(
    { jobId: id, cancelled },
    cancelled ? 'cancel received' : 'cancel for a job this worker does not run',
  );
}
