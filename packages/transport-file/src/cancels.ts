import { unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  isFinalStatus,
  isValidJobId,
  leaseRemaining,
  readClaim,
  readManifest,
  type TransportContext,
} from '@jw/core';
import type { QueueDirs } from './queue-dirs.js';
import { list } from './scans.js';

/** `cancel/{id}` or `cancel/{id}.json` names job `id`. */
const jobIdOfCancel = (name: string) => name.replace(/\.json$/, '');

/** Whether job `id` has ended and no worker holds it (so a cancel of it can do nothing). */
async function jobEnded(jobsDir: string, id: string): Promise<boolean> {
  if (!isValidJobId(id)) return false;
  const jobDir = path.join(jobsDir, id);
  const manifest = await readManifest(jobDir).catch(() => undefined);
  if (!manifest || !isFinalStatus(manifest.status)) return false;
  const claim = await readClaim(path.join(jobDir, 'results')).catch(() => undefined);
  return !claim || (await leaseRemaining(claim)) <= 0;
}

/**
 * Acts on `cancel/`: a file naming a job this worker runs cancels it and is removed. One
 * whose job has ended (the cancel came late, or the job ended before a scan saw it) is
 * removed too, so it cannot cancel a later run of the same id; others are left for the
 * worker that runs the job, or for the job still waiting in `pending/`.
 */
export async function scanCancels(dirs: QueueDirs, context: TransportContext): Promise<void> {
  for (const name of await list(dirs.cancel)) {
    const id = jobIdOfCancel(name);
    if (context.cancelJob(id, 'cancel file') || (await jobEnded(context.jobsDir, id)))
      await unlink(path.join(dirs.cancel, name)).catch(() => {});
  }
}

/** Job `id` ended here: a cancel of it left in `cancel/` is done with. */
export async function removeCancel(dirs: QueueDirs, id: string): Promise<void> {
  for (const name of [id, `${id}.json`]) await unlink(path.join(dirs.cancel, name)).catch(() => {});
}
