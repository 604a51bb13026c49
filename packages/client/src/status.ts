import path from 'node:path';
import { type ClaimRecord, type Manifest, RESULTS_DIR, readClaim, readManifest } from '@jw/core';
import { checkJobId } from './job-id.js';
import { resolveJobsDir } from './prepare.js';

export interface JobStatusInfo {
  id: string;
  jobDir: string;
  /** `results/result.json`, once a worker started the job. */
  manifest?: Manifest;
  /** `results/.claim`: which worker holds the job now (SPEC 6). */
  claim?: ClaimRecord;
}

/** A job's state as the shared drive tells it: its manifest and its claim. */
export async function readStatus(jobsDir: string, id: string): Promise<JobStatusInfo> {
  const jobDir = path.join(await resolveJobsDir(jobsDir), checkJobId(id));
  const [manifest, claim] = await Promise.all([
    readManifest(jobDir),
    readClaim(path.join(jobDir, RESULTS_DIR)).catch(() => undefined),
  ]);
  return {
    id,
    jobDir,
    ...(manifest ? { manifest } : {}),
    ...(claim ? { claim } : {}),
  };
}
