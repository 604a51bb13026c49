import path from 'node:path';
import { runAttemptSteps, stopReasonOf } from './attempt-steps.js';
import { AttemptWatch } from './attempt-watch.js';
import type { Claim } from './claim.js';
import { ErrorCode, JwError, toJwError } from './errors.js';
import type { JobEvent, JobState } from './events.js';
import { checkUsesSteps } from './handlers/registry.js';
import { containJob } from './job-containment.js';
import {
  errorFailure,
  errorText,
  type Failure,
  type JobOutcome,
  stopFailure,
} from './job-outcome.js';
import { resolveJob } from './job-source.js';
import { type Manifest, RESULTS_DIR, resultMessageOf, writeManifest } from './manifest.js';
import { maskedLogger, maskText } from './mask.js';
import type { JobRequest } from './request.js';
import { removeStaleTemps } from './results-dir.js';
import { retrying } from './results-retry.js';
import { chownWorkspace } from './run-as.js';
import type { RunJobOptions } from './run-job-options.js';
import type { StopReason } from './run-steps.js';
import { findChanges } from './snapshot.js';
import { emptyStage, stageJob } from './stage.js';
import { removeStepLogs } from './step-log.js';
import { syncArtifacts } from './sync.js';
import { createWorkspace, removeWorkspace } from './workspaces.js';

/** What was found of the job dir before the claim, so it is not looked at again. */
export interface FoundJobDir {
  /** The claim took over from a dead or stopped attempt. */
  recovered: boolean;
  /** Step logs of an earlier attempt in `results/`, to be replaced. */
  stepLogs: readonly string[];
  /** The job dir was made for this request: it holds nothing but `results/`. */
  jobDirMade: boolean;
}

/** One attempt of one job, from claim to cleanup. */
export class JobRun {
  readonly #request: JobRequest;
  readonly #jobDir: string;
  readonly #resultsDir: string;
  readonly #claim: Claim;
  readonly #o: RunJobOptions;
  readonly #abort = new AbortController();
  readonly #manifest: Manifest;
  readonly #started = Date.now();
  readonly #watch: AttemptWatch;
  readonly #found: FoundJobDir;
  #workspace: string | undefined;
  #keepClaim = false;
  /** The job's secret values, once job.json is read: masked in every error text. */
  #secrets: readonly string[] = [];
  /** A finished attempt's workspace goes once its result is delivered, not before. */
  #removeOnDelivery = false;

  constructor(
    request: JobRequest,
    jobDir: string,
    claim: Claim,
    options: RunJobOptions,
    found: FoundJobDir,
  ) {
    this.#found = found;
    this.#request = request;
    this.#jobDir = jobDir;
    this.#resultsDir = path.join(jobDir, RESULTS_DIR);
    this.#claim = claim;
    this.#o = options;
    this.#manifest = {
      schemaVersion: 1,
      jobId: request.id,
      status: 'running',
      exitCode: null,
      attempt: claim.attempt,
      worker: options.worker,
      timing: { start: new Date(this.#started).toISOString(), end: null, durationMs: null },
      steps: [],
      artifacts: [],
    };
    this.#watch = new AttemptWatch(request, options, this.#manifest, found.recovered, (extra) =>
      this.#emit('running', extra),
    );
  }

  /** The worker's log lines about this job, with its secrets masked. */
  get #logger() {
    return maskedLogger(this.#o.logger, this.#secrets);
  }

  get #stopReason(): StopReason | undefined {
    return stopReasonOf(this.#abort.signal);
  }

  #emit(state: JobState, extra: Partial<JobEvent> = {}): void {
    try {
      this.#o.onEvent?.({
        jobId: this.#request.id,
        state,
        attempt: this.#manifest.attempt,
        workerId: this.#o.worker.id,
        at: new Date().toISOString(),
        ...extra,
      });
    } catch (error) {
      this.#logger.warn({ err: error, jobId: this.#request.id }, 'event listener failed');
    }
  }

  async #save(): Promise<void> {
    try {
      await retrying(this.#o, this.#request.id, this.#abort.signal, () =>
        writeManifest(this.#jobDir, this.#manifest),
      );
    } catch (error) {
      throw toJwError(error, ErrorCode.RESULTS_UNWRITABLE, 'cannot write result.json');
    }
  }

  async execute(): Promise<JobOutcome> {
    const external = this.#o.signal;
    const forward = () =>
      this.#abort.abort(external?.reason === 'shutdown' ? 'shutdown' : 'cancel');
    if (external?.aborted) forward();
    else external?.addEventListener('abort', forward, { once: true });
    this.#claim.keepAlive(() => this.#abort.abort('claim-lost'));
    let jobTimer: NodeJS.Timeout | undefined;
    let unwritable = false;
    try {
      await removeStepLogs(this.#resultsDir, this.#found.stepLogs);
      // A job dir made for this request has nothing to stage: its first step starts next,
      // and the manifest is first written there (one write fewer on the shared drive).
      if (!this.#found.jobDirMade) await this.#save();
      this.#emit('claimed');
      let failure: Failure | undefined;
      try {
        const made = this.#found.jobDirMade;
        const job = await resolveJob(this.#jobDir, this.#request, this.#o.defaultTimeoutMs, !made);
        await checkUsesSteps(job.steps, this.#o.handlers);
        const containment = containJob(job, this.#o);
        this.#secrets = containment.secrets;
        if (job.timeoutMs !== undefined) {
          jobTimer = setTimeout(() => this.#abort.abort('timeout'), job.timeoutMs);
        }
        this.#emit('staging');
        const { workspace, before } = await this.#watch.phase('stage', async () => {
          const ws = await createWorkspace(this.#o.workspacesDir, this.#request.id).catch(
            (error) => {
              throw new JwError(
                ErrorCode.WORKSPACES_UNWRITABLE,
                `workspaces dir ${this.#o.workspacesDir} cannot be written: ${errorText(error)}`,
                { cause: error },
              );
            },
          );
          this.#workspace = ws;
          // A job dir made for this request has nothing to stage: its workspace starts empty.
          const staged = made
            ? emptyStage()
            : await stageJob(this.#jobDir, ws, {
                concurrency: this.#o.stageConcurrency ?? 32,
                realJobDir: true,
              });
          if (this.#o.runAs) await chownWorkspace(ws, this.#o.runAs);
          return {
            value: { workspace: ws, before: staged.snapshot },
            files: staged.files,
            bytes: staged.bytes,
          };
        });
        failure = await runAttemptSteps(
          {
            request: this.#request,
            options: this.#o,
            resultsDir: this.#resultsDir,
            workspace,
            manifest: this.#manifest,
            signal: this.#abort.signal,
            containment,
            save: () => this.#save(),
            emit: (state, extra) => this.#emit(state, extra),
            watch: this.#watch,
          },
          job.steps,
          job.env,
        );
        const reason = this.#stopReason;
        if (reason === 'shutdown' || reason === 'claim-lost') return await this.#giveBack(reason);
        this.#emit('syncing');
        try {
          this.#manifest.artifacts = await this.#watch.phase('sync', async () => {
            const changes = await findChanges(before, { workspace, source: this.#jobDir });
            const synced = await syncArtifacts(workspace, this.#resultsDir, changes, job.artifacts);
            const bytes = synced.reduce((sum, a) => sum + a.size, 0);
            return { value: synced, files: synced.length, bytes };
          });
        } catch (error) {
          failure ??= errorFailure(toJwError(error, ErrorCode.SYNC_FAILED, 'artifact sync failed'));
        }
      } catch (error) {
        const e = toJwError(error, ErrorCode.STAGING_FAILED);
        if (e.code === ErrorCode.RESULTS_UNWRITABLE) throw e;
        if (e.code === ErrorCode.WORKSPACES_UNWRITABLE) return await this.#giveBack('fault', e);
        const reason = this.#stopReason;
        if (reason === 'shutdown' || reason === 'claim-lost') return await this.#giveBack(reason);
        failure = stopFailure(reason) ?? errorFailure(e);
      }
      return await this.#finish(failure);
    } catch (error) {
      // Only a results/ write failure gets here, after its retries: the job cannot be recorded.
      unwritable = true;
      const shutdown = this.#stopReason === 'shutdown';
      this.#abort.abort('shutdown');
      // Best effort: on a drive that refuses every write the claim stays and expires.
      if (shutdown) await this.#claim.expire().catch(() => {});
      else await this.#claim.release().catch(() => {});
      if (shutdown) return { kind: 'requeued' };
      return { kind: 'unwritable', error: toJwError(error, ErrorCode.RESULTS_UNWRITABLE) };
    } finally {
      if (jobTimer) clearTimeout(jobTimer);
      external?.removeEventListener('abort', forward);
      if (!this.#keepClaim) this.#claim.stopKeepAlive();
      if (this.#workspace && !this.#removeOnDelivery)
        await removeWorkspace(this.#workspace).catch(() => {});
      this.#watch.end(unwritable, this.#stopReason === 'shutdown');
    }
  }

  async #finish(found: Failure | undefined): Promise<JobOutcome> {
    const failure = found && { ...found, message: maskText(found.message, this.#secrets) };
    const end = Date.now();
    Object.assign(this.#manifest, {
      status: failure?.status ?? 'success',
      exitCode: failure ? failure.exitCode : 0,
      timing: {
        start: this.#manifest.timing.start,
        end: new Date(end).toISOString(),
        durationMs: end - this.#started,
      },
      ...(failure ? { error: failure.message, errorCode: failure.code } : {}),
    });
    await this.#save();
    // Temp files older than this attempt's claim were left by a killed one (it may have
    // been taken over too soon after the kill for the sweep at takeover to judge them).
    const claimedAt = Date.parse(this.#claim.record.claimedAt);
    if (this.#claim.attempt > 1 && claimedAt > 0)
      await removeStaleTemps(this.#resultsDir, claimedAt).catch(() => 0);
    // The lease is kept until the result is delivered (a broker may be away for a while).
    this.#keepClaim = true;
    this.#claim.keepAlive(() => {});
    const claim = this.#claim;
    const workspace = this.#workspace;
    const result = resultMessageOf(this.#manifest, this.#o.worker.id);
    this.#emit(result.status, {
      exitCode: result.exitCode,
      ...(failure ? { error: failure.message, errorCode: failure.code } : {}),
    });
    // The result does not wait for the workspace's removal (a big tree takes seconds): it
    // goes once the delivery is over. Left behind by a crash, the sweep of dead owners has it.
    this.#removeOnDelivery = true;
    return {
      kind: 'finished',
      result,
      manifest: this.#manifest,
      delivered: () => claim.release(),
      ...(workspace ? { settled: () => removeWorkspace(workspace) } : {}),
    };
  }

  /**
   * Shutdown, or a fault of this worker: leave a non-final manifest and an expired claim,
   * so a redelivery (here or on another worker) runs it at once.
   */
  async #giveBack(
    reason: 'shutdown' | 'claim-lost' | 'fault',
    fault?: JwError,
  ): Promise<JobOutcome> {
    if (reason === 'claim-lost') {
      this.#logger.warn(
        { jobId: this.#request.id },
        'claim taken over by another worker; stopped this attempt',
      );
      return { kind: 'busy', retryInMs: this.#o.leaseMs };
    }
    this.#manifest.status = 'requeued';
    this.#manifest.error = fault
      ? `given back for another attempt: ${fault.message}`
      : 'worker shut down before the job finished; given back for another attempt';
    await this.#save();
    await this.#claim.expire();
    this.#emit('requeued');
    if (fault) return { kind: 'failed', error: fault, retryInMs: 5_000 };
    return { kind: 'requeued' };
  }
}
