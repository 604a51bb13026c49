import type { DeliveryHost } from './delivery-host.js';
import { ErrorCode, JwError } from './errors.js';
import { errorResult } from './job-outcome.js';
import type { Delivery } from './transport.js';

/**
 * The job's results/ cannot be written (after retries): a result message says so where
 * the transport can send one, and the delivery is dead-lettered so it does not come back
 * for ever. Too many in a row are a worker fault (SPEC 10).
 */
export async function deadLetter(
  host: DeliveryHost,
  delivery: Delivery,
  jobId: string,
  error: JwError,
): Promise<void> {
  const { tally } = host;
  tally.counted++;
  tally.unwritable++;
  tally.unwritableStreak++;
  host.logger.error(
    { jobId, code: error.code, err: error.message },
    'results dir cannot be written; job dead-lettered',
  );
  const result = errorResult(jobId, host.info.id, ErrorCode.RESULTS_UNWRITABLE, error.message);
  tally.results.push(result);
  await recordDeadLetter(host, delivery, error, jobId);
  host.observer.rejected(ErrorCode.RESULTS_UNWRITABLE, jobId);
  await host.settle('reject', () => delivery.reject(error, result));
  host.events.emit('result', result);
  if (tally.unwritableStreak >= host.options.resultsFaultAfter) {
    host.fault(
      new JwError(
        ErrorCode.RESULTS_UNWRITABLE,
        `the results dir of ${tally.unwritableStreak} jobs in a row could not be written`,
      ),
    );
  }
}

/** A bad request: rejected, with a result message when its job id is known. */
export async function rejectBadRequest(
  host: DeliveryHost,
  delivery: Delivery,
  error: JwError,
): Promise<void> {
  host.tally.rejected++;
  host.logger.warn(
    { delivery: delivery.label, jobId: error.jobId, err: error.message },
    'bad request',
  );
  const result = error.jobId
    ? errorResult(error.jobId, host.info.id, ErrorCode.BAD_REQUEST, error.message)
    : undefined;
  await recordDeadLetter(host, delivery, error, error.jobId);
  host.observer.rejected(error.code, error.jobId);
  await host.settle('reject', () => delivery.reject(error, result));
  host.events.emit('rejected', error);
}

/**
 * Every delivery a transport is told to dead-letter passes here: onto the dead-letter file
 * (when there is one) first, so it is on disk before the transport acknowledges it.
 */
function recordDeadLetter(
  host: DeliveryHost,
  delivery: Delivery,
  error: JwError,
  jobId: string | undefined,
): Promise<void> | undefined {
  return host.deadLetters?.write({
    transport: host.info.transport,
    workerId: host.info.id,
    error,
    jobId,
    delivery: delivery.label,
    payload: delivery.raw ?? delivery.body,
  });
}
