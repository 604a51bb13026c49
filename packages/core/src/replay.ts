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

async function removeTemps(jobDir: string): Promise<void> {
  await removeStaleTemps(path.join(jobDir, RESULTS_DIR)).catch(() => 0);
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
  const stale = left && (await leaseRemaining(left)) === 0 ? left.token : undefined;
  if (!stale) return replayed(manifest, workerId);
  return replayed(manifest, workerId, async () => {
    await removeTemps(jobDir);
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
    await removeTemps(jobDir);
    await held.release();
  });
}
