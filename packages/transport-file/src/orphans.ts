import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import {
  findStaleJobs,
  isFinalStatus,
  leaseRemaining,
  readClaim,
  readManifest,
  removeStaleClaim,
  resultMessageOf,
  type TransportContext,
} from '@jw/core';
import { isRequestFile, type QueueDirs } from './queue-dirs.js';
import { writeQueueFile } from './queue-files.js';
import { jobIdOf, readRegular } from './request-file.js';

/** `hello~1a2b3c4d.json` in processing/ was `hello.json` in pending/. */
export function originalName(taken: string): string {
  return taken.replace(/~[0-9a-f]+\.json$/, '.json');
}

/** A unique name in processing/: a new request of the same name cannot overwrite this one. */
export function takenName(name: string): string {
  return `${name.slice(0, -'.json'.length)}~${randomBytes(4).toString('hex')}.json`;
}

export interface OrphanScan {
  dirs: QueueDirs;
  context: TransportContext;
  /** A file in processing/ with no claim made after it was taken is given back after this long. */
  orphanAfterMs: number;
  /** Files this worker has taken and not settled (running, or postponed). */
  ours(taken: string): boolean;
}

/**
 * Gives back the files in `processing/` that no live worker holds (SPEC 6, recovery).
 * A claim made after the file was taken belongs to the worker that took it: once that
 * claim's lease is over (or its pid is gone on this host, at once) the file is an
 * orphan. Without such a claim the taker may still be about to claim, so the file is
 * left alone for `orphanAfterMs`. Of several workers scanning, the one whose rename
 * succeeds acts and logs.
 */
export async function recoverOrphans(scan: OrphanScan): Promise<void> {
  const { dirs, context } = scan;
  for (const taken of await readdir(dirs.processing).catch(() => [] as string[])) {
    if (!isRequestFile(taken) || scan.ours(taken)) continue;
    const file = path.join(dirs.processing, taken);
    // Never open what is not a regular file (a FIFO would block the read for ever).
    if (!(await lstat(file).catch(() => undefined))?.isFile()) continue;
    const read = await readRegular(file).catch(() => undefined);
    if (!read || 'bad' in read) continue;
    const name = originalName(taken);
    const takenAt = read.stats.ctimeMs;
    const old = Date.now() - takenAt >= scan.orphanAfterMs;
    const id = jobIdOf(read.text, name);
    if (id === undefined) {
      // A bad request its taker died on: whoever takes it next dead-letters it.
      if (old) await giveBack(scan, taken, name, undefined);
      continue;
    }
    if (context.activeJobs().includes(id)) continue;
    const jobDir = path.join(context.jobsDir, id);
    const claim = await readClaim(path.join(jobDir, 'results'));
    if (claim && (await leaseRemaining(claim)) > 0) continue;
    // claimedAt has millisecond precision, ctime finer: a claim made in the same millisecond counts.
    const claimOfThisTake = !!claim && Date.parse(claim.claimedAt) + 1 >= takenAt;
    if (!claimOfThisTake && !old) continue;
    const manifest = await readManifest(jobDir);
    // A final result of an earlier attempt than the claim's (a forced re-run) is not this one's.
    const ended =
      manifest && isFinalStatus(manifest.status) && manifest.attempt >= (claim?.attempt ?? 0);
    if (ended) {
      await sendStoredResult(scan, taken, name, id, claim?.token);
    } else {
      await giveBack(scan, taken, name, id);
    }
  }
}

async function giveBack(scan: OrphanScan, taken: string, name: string, id: string | undefined) {
  const moved = await rename(
    path.join(scan.dirs.processing, taken),
    path.join(scan.dirs.pending, name),
  ).then(
    () => true,
    () => false,
  );
  if (moved)
    scan.context.logger.warn(
      { file: name, jobId: id },
      'giving back a request left in processing/ by a dead worker',
    );
}

/**
 * The job ended but its worker died before the result message was written or the
 * request moved on: write the stored result (marked replayed), remove the dead
 * claim, then move the request to done/.
 */
async function sendStoredResult(
  scan: OrphanScan,
  taken: string,
  name: string,
  id: string,
  claimToken: string | undefined,
) {
  const { dirs, context } = scan;
  // Take the file first (a rename within processing/), so that one worker alone does this.
  const mine = takenName(name);
  const won = await rename(
    path.join(dirs.processing, taken),
    path.join(dirs.processing, mine),
  ).then(
    () => true,
    () => false,
  );
  if (!won) return;
  const jobDir = path.join(context.jobsDir, id);
  const manifest = await readManifest(jobDir);
  if (!manifest || !isFinalStatus(manifest.status)) {
    await rename(path.join(dirs.processing, mine), path.join(dirs.pending, name)).catch(() => {});
    return;
  }
  await writeQueueFile(
    path.join(dirs.results, `${id}.json`),
    `${JSON.stringify(resultMessageOf(manifest, context.workerId, true), null, 2)}\n`,
  );
  if (claimToken) await removeStaleClaim(jobDir, claimToken);
  await rename(path.join(dirs.processing, mine), path.join(dirs.done, name)).catch(() => {});
  context.logger.warn(
    { file: name, jobId: id },
    'sent the stored result of a request left in processing/ by a dead worker',
  );
}

/**
 * Removes the dead claim left beside a final result whose result message is already in
 * `results/` (a worker killed after moving the request to done/, before its claim went).
 * A job whose message this queue does not hold (another transport's) is left alone.
 */
export async function removeDeliveredClaims(scan: Omit<OrphanScan, 'ours'>): Promise<void> {
  const { dirs, context } = scan;
  const stale = await findStaleJobs(context.jobsDir);
  if (stale.length === 0) return;
  const waiting = new Set<string>();
  for (const taken of await readdir(dirs.processing).catch(() => [] as string[])) {
    const file = path.join(dirs.processing, taken);
    if (!isRequestFile(taken) || !(await lstat(file).catch(() => undefined))?.isFile()) continue;
    const read = await readRegular(file).catch(() => undefined);
    const id = read && !('bad' in read) ? jobIdOf(read.text, originalName(taken)) : undefined;
    if (id) waiting.add(id);
  }
  for (const id of stale) {
    if (waiting.has(id) || context.activeJobs().includes(id)) continue;
    const jobDir = path.join(context.jobsDir, id);
    const claim = await readClaim(path.join(jobDir, 'results'));
    const manifest = await readManifest(jobDir);
    if (!claim || !manifest || !isFinalStatus(manifest.status)) continue;
    if (claim.attempt > manifest.attempt || (await leaseRemaining(claim)) > 0) continue;
    const sent = await readFile(path.join(dirs.results, `${id}.json`), 'utf8').then(
      (text) => JSON.parse(text) as { attempt?: unknown; status?: unknown },
      () => undefined,
    );
    if (sent?.attempt !== manifest.attempt || sent.status !== manifest.status) continue;
    await removeStaleClaim(jobDir, claim.token);
    context.logger.info({ jobId: id }, 'removed the claim a dead worker left beside a sent result');
  }
}
