import path from 'node:path';
import {
  isFinalStatus,
  type Logger,
  leaseRemaining,
  RESULTS_DIR,
  readClaim,
  readManifest,
  removeStaleClaim,
} from '@jw/core';
import type { InFlight } from './in-flight.js';
import type { StatusOutbox } from './status-outbox.js';
import { statusWordOf } from './status-words.js';

/**
 * Jobs an earlier run took and never settled. One whose `result.json` is final
 * ended just before that run was killed: its final status goes to the outbox.
 * One that is not final was killed with the run; the backend hands it out again
 * once it takes it for stale, and the claim's dead pid lets the next attempt run.
 * A final job's claim, left by the killed run, goes: nothing comes back for that job.
 */
export async function settleLeftovers(
  inFlight: InFlight,
  outbox: StatusOutbox,
  workerId: string,
  logger: Logger,
): Promise<void> {
  for (const record of await inFlight.left()) {
    const jobId = record.job_id;
    const manifest = await readManifest(record.job_dir);
    const final = manifest !== undefined && isFinalStatus(manifest.status);
    if (!(await outbox.has(jobId))) {
      if (manifest && isFinalStatus(manifest.status)) {
        logger.info(
          { jobId, status: manifest.status },
          'a job ended before the agent was stopped; sending its final status',
        );
        await outbox.keep({
          job_id: jobId,
          worker_id: workerId,
          status: statusWordOf(manifest.status),
          ...(manifest.exitCode === null ? {} : { exit_code: manifest.exitCode }),
          ...(manifest.error === undefined ? {} : { error: manifest.error }),
        });
      } else {
        logger.info(
          { jobId },
          'a job was running when the agent was stopped; the backend hands it out again',
        );
      }
    }
    if (final) await dropDeadClaim(record.job_dir);
    await inFlight.remove(jobId);
  }
}

async function dropDeadClaim(jobDir: string): Promise<void> {
  const claim = await readClaim(path.join(jobDir, RESULTS_DIR));
  if (claim && (await leaseRemaining(claim)) === 0) await removeStaleClaim(jobDir, claim.token);
}
