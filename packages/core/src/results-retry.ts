import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, isJwError } from './errors.js';
import { errorText } from './job-outcome.js';
import type { Logger } from './logger.js';

export const RESULTS_RETRY_DEFAULTS = { resultsRetries: 3, resultsBackoffMs: 20_000 } as const;

export interface ResultsRetryOptions {
  /** Tries of a write to results/ before the job is given up as RESULTS_UNWRITABLE. Default 3. */
  resultsRetries?: number;
  /** Wait before the second try; it doubles for each further one. Default 20 s. */
  resultsBackoffMs?: number;
  logger: Logger;
}

/**
 * Runs a write to results/ (SPEC 10: a shared drive may hiccup), again after a back-off
 * that doubles, up to `resultsRetries` tries. A BAD_JOB (a link refused) is not retried.
 */
export async function retrying<T>(
  options: ResultsRetryOptions,
  jobId: string,
  signal: AbortSignal | undefined,
  write: () => Promise<T>,
): Promise<T> {
  const tries = Math.max(1, options.resultsRetries ?? RESULTS_RETRY_DEFAULTS.resultsRetries);
  let waitMs = options.resultsBackoffMs ?? RESULTS_RETRY_DEFAULTS.resultsBackoffMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (isJwError(error, ErrorCode.BAD_JOB) || attempt >= tries || signal?.aborted) throw error;
      options.logger.warn(
        { jobId, attempt, retryInMs: waitMs, err: errorText(error) },
        'results dir not writable; trying again',
      );
      await sleep(waitMs, undefined, signal ? { signal } : {}).catch(() => {});
      waitMs *= 2;
    }
  }
}
