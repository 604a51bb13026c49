import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Claim, type ClaimAttempt, claimJob } from './claim.js';
import { ErrorCode, isJwError, toJwError } from './errors.js';
import { type FoundJobDir, JobRun } from './job-attempt.js';
import { errorResult, type JobOutcome } from './job-outcome.js';
import { isFinalStatus, type Manifest, RESULTS_DIR, readManifest } from './manifest.js';
import { replay, replayUnderClaim } from './replay.js';
import type { JobRequest } from './request.js';
import { resolveJobDir } from './request.js';
import { openResultsDir, removeStaleTemps } from './results-dir.js';
import { retrying } from './results-retry.js';
import type { RunJobOptions } from './run-job-options.js';

export type { JobOutcome } from './job-outcome.js';
export type { RunJobOptions } from './run-job-options.js';
// For the worker loop, which loads this module with its first job.
export { StepLauncher } from './step-launcher.js';

/** A bare request (just an id) re-runs a recovered job as its first request asked. */
function isBare(request: JobRequest): boolean {
  return !request.steps && !request.env && request.timeoutSeconds === undefined;
}

/**
 * Runs one request through the whole pipeline: job dir, replay of a finished job,
 * claim, job definition, staging, steps with logs, artifact sync, manifest, cleanup.
 * Throws only BAD_REQUEST (the id does not name a job dir the worker may use).
 */
export async function runJob(request: JobRequest, options: RunJobOptions): Promise<JobOutcome> {
  const { path: jobDir, exists } = await resolveJobDir(options.jobsDir, request.id);
  const workerId = options.worker.id;
  const refuse = (error: string): JobOutcome => ({
    kind: 'finished',
    manifest: undefined,
    result: errorResult(request.id, workerId, ErrorCode.BAD_JOB, error),
  });
  if (!exists && !request.steps)
    return refuse(`job dir ${request.id} does not exist and the request has no steps`);
  const info = exists ? await stat(jobDir).catch(() => undefined) : undefined;
  if (info && !info.isDirectory()) return refuse(`job dir ${request.id} is not a directory`);
  let claim: Claim;
  let recovered = false;
  let found: Omit<FoundJobDir, 'recovered'>;
  try {
    type Prepared =
      | { done: JobOutcome }
      | {
          attempt: Extract<ClaimAttempt, { kind: 'claimed' }>;
          stored: Manifest | undefined;
          stepLogs: string[];
        };
    const prepared = await retrying<Prepared>(options, request.id, options.signal, async () => {
      if (!exists) await mkdir(jobDir, { recursive: true });
      // A results/ that is a link, or a link in the worker's own names, is refused before
      // anything is read or written there: a result message is all that can be sent.
      const results = await openResultsDir(jobDir);
      // A results/ made just now holds no manifest: the read after the claim still looks.
      const stored = results.created ? undefined : await readManifest(jobDir);
      if (stored && isFinalStatus(stored.status) && !request.force) {
        const held = options.claim?.claim;
        if (!held) return { done: await replay(jobDir, stored, workerId) };
        return { done: replayUnderClaim(jobDir, stored, workerId, held) };
      }
      const attempt =
        options.claim ??
        (await claimJob(jobDir, {
          workerId,
          leaseMs: options.leaseMs,
          request,
          freshResults: results.created,
        }));
      if (attempt.kind === 'busy') return { done: { kind: 'busy', retryInMs: attempt.retryInMs } };
      return { attempt, stored, stepLogs: results.stepLogs };
    });
    if ('done' in prepared) return prepared.done;
    const { attempt, stored } = prepared;
    found = { stepLogs: prepared.stepLogs, jobDirMade: !exists };
    claim = attempt.claim;
    recovered = attempt.previous !== undefined;
    if (attempt.previous?.request && isBare(request))
      request = { ...attempt.previous.request, force: request.force };
    // A dead worker's attempt may have left temp files behind; the claim makes them ours:
    // any last changed before we took it over (a racing worker whose temp goes retries: tempVanished).
    if (attempt.previous)
      await removeStaleTemps(
        path.join(jobDir, RESULTS_DIR),
        Date.parse(attempt.claim.record.claimedAt) || Date.now(),
      ).catch(() => 0);
    // Another worker may have finished between our look and our claim.
    const again = await readManifest(jobDir);
    if (again && isFinalStatus(again.status) && !request.force && again !== stored) {
      await claim.release();
      return replay(jobDir, again, workerId);
    }
  } catch (error) {
    if (isJwError(error, ErrorCode.BAD_JOB)) return refuse(error.message);
    if (options.signal?.aborted && options.signal.reason === 'shutdown')
      return { kind: 'requeued' };
    return {
      kind: 'unwritable',
      error: toJwError(error, ErrorCode.RESULTS_UNWRITABLE, `results dir of ${request.id}`),
    };
  }
  try {
    await options.onClaimed?.();
  } catch (error) {
    await claim.expire().catch(() => {});
    return {
      kind: 'failed',
      error: toJwError(error, ErrorCode.TRANSPORT_FAILED, 'could not acknowledge the claim'),
      retryInMs: 10_000,
    };
  }
  return new JobRun(request, jobDir, claim, options, { recovered, ...found }).execute();
}
