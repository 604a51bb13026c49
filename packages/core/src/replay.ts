import path from 'node:path';
import { type Claim, leaseRemaining, readClaim, removeStaleClaim } from './claim.js';
import type { JobOutcome } from './job-outcome.js';
import { type Manifest, RESULTS_DIR, resultMessageOf } from './manifest.js';
import { removeStaleTemps } from './results-dir.js';

function replayed(manifest: Manifest, workerId: string, cleanUp?: () => Promise<void>): JobOutcome {
  return {
    kind: 'finished',
    result: resultMessageOf(manifest, workerId, true),
    manifest,
    ...(cleanUp ? { delivered: cleanUp } : {}),
  };
}

/**
 * The dead holder's temp files: every one last changed before `judgedDeadAt`, the moment
 * its lease was seen ended (it can have written none since). The default 60-second age
 * would keep those of a holder killed just before.
 */
async function removeTemps(jobDir: string, judgedDeadAt: number): Promise<void> {
  await removeStaleTemps(path.join(jobDir, RESULTS_DIR), judgedDeadAt).catch(() => 0);
}

/**
 * The stored result of a finished job. A claim of a dead worker left beside it means its
 * result message may never have been sent: it goes once this replay is delivered.
 */
export async function replay(
  jobDir: string,
  manifest: Manifest,
  workerId: string,
): Promise<JobOutcome> {
  const left = await readClaim(path.join(jobDir, RESULTS_DIR));
  const judgedDeadAt = Date.now();
  const stale = left && (await leaseRemaining(left, judgedDeadAt)) === 0 ? left.token : undefined;
  if (!stale) return replayed(manifest, workerId);
  return replayed(manifest, workerId, async () => {
    await removeTemps(jobDir, judgedDeadAt);
    await removeStaleClaim(jobDir, stale);
  });
}

/** Recovered because its result may not have been sent: the claim goes once it is. */
export function replayUnderClaim(
  jobDir: string,
  manifest: Manifest,
  workerId: string,
  held: Claim,
): JobOutcome {
  return replayed(manifest, workerId, async () => {
    // Held since its takeover: what is older than that is the dead holder's.
    await removeTemps(jobDir, Date.parse(held.record.claimedAt) || Date.now());
    await held.release();
  });
}
