import { mkdir, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Claim,
  type ClaimAttempt,
  claimJob,
  leaseRemaining,
  readClaim,
  removeStaleClaim,
} from './claim.js';
import { ErrorCode, isJwError, JwError, toJwError } from './errors.js';
import type { JobEvent, JobState } from './events.js';
import type { Step } from './job-definition.js';
import { resolveJob } from './job-source.js';
import type { Logger } from './logger.js';
import {
  type FinalStatus,
  isFinalStatus,
  type Manifest,
  RESULTS_DIR,
  type ResultMessage,
  readManifest,
  resultMessageOf,
  type StepRecord,
  type WorkerInfo,
  writeManifest,
} from './manifest.js';
import type { JobRequest } from './request.js';
import { resolveJobDir } from './request.js';
import { prepareResultsDir, removeStaleTemps } from './results-dir.js';
import { runStep, type StepHandler, type StepOutcome, type StopReason } from './run-steps.js';
import { diffSnapshots, takeSnapshot } from './snapshot.js';
import { stageJob } from './stage.js';
import { buildStepEnv } from './step-env.js';
import { removeStepLogs, StepLog } from './step-log.js';
import { syncArtifacts } from './sync.js';
import { createWorkspace, removeWorkspace } from './workspaces.js';

export interface RunJobOptions {
  jobsDir: string;
  workspacesDir: string;
  worker: WorkerInfo;
  /** Claim lease (SPEC 6). */
  leaseMs: number;
  /** SIGTERM → SIGKILL grace for a step's process group. */
  killGraceMs: number;
  /** Job time limit when neither the request nor job.json sets one. */
  defaultTimeoutMs?: number;
  /** Base env for steps (secrets are removed). */
  env: NodeJS.ProcessEnv;
  /** More env names to keep from steps (the transport's credentials). */
  secretEnv?: readonly string[];
  handlers?: Record<string, StepHandler>;
  /** Abort with reason 'cancel' (→ cancelled) or 'shutdown' (→ given back). */
  signal?: AbortSignal;
  /** A claim taken before the request reached the worker (a recovered job): run under it. */
  claim?: Extract<ClaimAttempt, { kind: 'claimed' }>;
  /** Called once the claim exists on the drive, before anything runs (SPEC 6: claim before ack). */
  onClaimed?: () => void | Promise<void>;
  onEvent?: (event: JobEvent) => void;
  logger: Logger;
  stageConcurrency?: number;
  /** Tries of a write to results/ before the job is given up as RESULTS_UNWRITABLE. Default 3. */
  resultsRetries?: number;
  /** Wait before the second try; it doubles for each further one. Default 20 s. */
  resultsBackoffMs?: number;
}

export const RESULTS_RETRY_DEFAULTS = { resultsRetries: 3, resultsBackoffMs: 20_000 } as const;

export type JobOutcome =
  /**
   * A final result exists (this run's, or a stored one when `result.replayed`). Call
   * `delivered` once the result message is taken: it removes the job's claim, which
   * stays until then so that recovery sends the result again if this worker dies.
   */
  | {
      kind: 'finished';
      result: ResultMessage;
      manifest: Manifest | undefined;
      delivered?: () => Promise<void>;
    }
  /** Another worker holds a fresh claim, or took this one over: try again later. */
  | { kind: 'busy'; retryInMs: number }
  /** Stopped by a shutdown before the end: give it back. */
  | { kind: 'requeued' }
  /**
   * `results/` could not be written, even after retries (RESULTS_UNWRITABLE): nothing
   * records the job on the drive. Answer with a result message and dead-letter it.
   */
  | { kind: 'unwritable'; error: JwError }
  /** This worker cannot run jobs now (its workspaces dir failed): give it back to another. */
  | { kind: 'failed'; error: JwError; retryInMs: number };

function exitCodeOfSignal(signal: string | null): number {
  const n = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return n ? 128 + n : 1;
}

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
    result: {
      id: request.id,
      status: 'error',
      exitCode: 1,
      manifestFile: null,
      workerId,
      error,
      errorCode: ErrorCode.BAD_JOB,
    },
  });
  if (!exists && !request.steps)
    return refuse(`job dir ${request.id} does not exist and the request has no steps`);
  const info = exists ? await stat(jobDir).catch(() => undefined) : undefined;
  if (info && !info.isDirectory()) return refuse(`job dir ${request.id} is not a directory`);
  let claim: Claim;
  try {
    type Prepared =
      | { done: JobOutcome }
      | { attempt: Extract<ClaimAttempt, { kind: 'claimed' }>; stored: Manifest | undefined };
    const prepared = await retrying<Prepared>(options, request.id, options.signal, async () => {
      if (!exists) await mkdir(jobDir, { recursive: true });
      // A results/ that is a link, or a link in the worker's own names, is refused before
      // anything is read or written there: a result message is all that can be sent.
      await prepareResultsDir(jobDir);
      const stored = await readManifest(jobDir);
      if (stored && isFinalStatus(stored.status) && !request.force) {
        const held = options.claim?.claim;
        if (!held) return { done: await replay(jobDir, stored, workerId) };
        // Recovered because its result may not have been sent: the claim goes once it is.
        return {
          done: {
            kind: 'finished',
            result: resultMessageOf(stored, workerId, true),
            manifest: stored,
            delivered: async () => {
              await removeStaleTemps(path.join(jobDir, RESULTS_DIR)).catch(() => 0);
              await held.release();
            },
          },
        };
      }
      const attempt =
        options.claim ?? (await claimJob(jobDir, { workerId, leaseMs: options.leaseMs, request }));
      if (attempt.kind === 'busy') return { done: { kind: 'busy', retryInMs: attempt.retryInMs } };
      return { attempt, stored };
    });
    if ('done' in prepared) return prepared.done;
    const { attempt, stored } = prepared;
    claim = attempt.claim;
    if (attempt.previous?.request && isBare(request))
      request = { ...attempt.previous.request, force: request.force };
    // A dead worker's attempt may have left temp files behind; the claim makes them ours.
    if (attempt.previous) await removeStaleTemps(path.join(jobDir, RESULTS_DIR)).catch(() => 0);
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
  return new JobRun(request, jobDir, claim, options).execute();
}

/**
 * Runs a write to results/ (SPEC 10: a shared drive may hiccup), again after a back-off
 * that doubles, up to `resultsRetries` tries. A BAD_JOB (a link refused) is not retried.
 */
async function retrying<T>(
  options: RunJobOptions,
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

/** An error as one line for a log: its code and message, never a stack. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The stored result of a finished job. A claim of a dead worker left beside it means its
 * result message may never have been sent: it goes once this replay is delivered.
 */
async function replay(jobDir: string, manifest: Manifest, workerId: string): Promise<JobOutcome> {
  const left = await readClaim(path.join(jobDir, RESULTS_DIR));
  const stale = left && (await leaseRemaining(left)) === 0 ? left.token : undefined;
  return {
    kind: 'finished',
    result: resultMessageOf(manifest, workerId, true),
    manifest,
    ...(stale
      ? {
          delivered: async () => {
            await removeStaleTemps(path.join(jobDir, RESULTS_DIR)).catch(() => 0);
            await removeStaleClaim(jobDir, stale);
          },
        }
      : {}),
  };
}

/** One attempt of one job, from claim to cleanup. */
class JobRun {
  readonly #request: JobRequest;
  readonly #jobDir: string;
  readonly #resultsDir: string;
  readonly #claim: Claim;
  readonly #o: RunJobOptions;
  readonly #abort = new AbortController();
  readonly #manifest: Manifest;
  readonly #started = Date.now();
  #workspace: string | undefined;
  #keepClaim = false;

  constructor(request: JobRequest, jobDir: string, claim: Claim, options: RunJobOptions) {
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
  }

  get #stopReason(): StopReason | undefined {
    return this.#abort.signal.aborted ? (this.#abort.signal.reason as StopReason) : undefined;
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
      this.#o.logger.warn({ err: error, jobId: this.#request.id }, 'event listener failed');
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
    try {
      await removeStepLogs(this.#resultsDir);
      await this.#save();
      this.#emit('claimed');
      let failure:
        | { status: FinalStatus; code: ErrorCode; message: string; exitCode: number }
        | undefined;
      try {
        const job = await resolveJob(this.#jobDir, this.#request, this.#o.defaultTimeoutMs);
        const unknown = job.steps.find((s) => s.uses && !this.#o.handlers?.[s.uses]);
        if (unknown)
          throw new JwError(
            ErrorCode.BAD_JOB,
            `step ${unknown.index} uses unknown handler "${unknown.uses}"`,
          );
        if (job.timeoutMs !== undefined) {
          jobTimer = setTimeout(() => this.#abort.abort('timeout'), job.timeoutMs);
        }
        this.#emit('staging');
        this.#workspace = await createWorkspace(this.#o.workspacesDir, this.#request.id).catch(
          (error) => {
            throw new JwError(
              ErrorCode.WORKSPACES_UNWRITABLE,
              `workspaces dir ${this.#o.workspacesDir} cannot be written: ${errorText(error)}`,
              { cause: error },
            );
          },
        );
        await stageJob(this.#jobDir, this.#workspace, {
          concurrency: this.#o.stageConcurrency ?? 32,
        });
        const before = await takeSnapshot(this.#workspace);
        failure = await this.#runSteps(job.steps, job.env);
        const reason = this.#stopReason;
        if (reason === 'shutdown' || reason === 'claim-lost') return await this.#giveBack(reason);
        this.#emit('syncing');
        try {
          const after = await takeSnapshot(this.#workspace);
          const changes = await diffSnapshots(before, after, {
            workspace: this.#workspace,
            source: this.#jobDir,
          });
          this.#manifest.artifacts = await syncArtifacts(
            this.#workspace,
            this.#resultsDir,
            changes,
            job.artifacts,
          );
        } catch (error) {
          const e = toJwError(error, ErrorCode.SYNC_FAILED, 'artifact sync failed');
          failure ??= { status: 'error', code: e.code, message: e.message, exitCode: 1 };
        }
      } catch (error) {
        const e = toJwError(error, ErrorCode.STAGING_FAILED);
        if (e.code === ErrorCode.RESULTS_UNWRITABLE) throw e;
        if (e.code === ErrorCode.WORKSPACES_UNWRITABLE) return await this.#giveBack('fault', e);
        const reason = this.#stopReason;
        if (reason === 'shutdown' || reason === 'claim-lost') return await this.#giveBack(reason);
        failure = this.#failureOfStop(reason) ?? {
          status: 'error',
          code: e.code,
          message: e.message,
          exitCode: 1,
        };
      }
      return await this.#finish(failure);
    } catch (error) {
      // Only a results/ write failure gets here, after its retries: the job cannot be recorded.
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
      if (this.#workspace) await removeWorkspace(this.#workspace).catch(() => {});
    }
  }

  #failureOfStop(reason: StopReason | undefined) {
    if (reason === 'timeout')
      return {
        status: 'timeout' as const,
        code: ErrorCode.TIMEOUT,
        message: 'job timed out',
        exitCode: 124,
      };
    if (reason === 'cancel')
      return {
        status: 'cancelled' as const,
        code: ErrorCode.CANCELLED,
        message: 'job cancelled',
        exitCode: 130,
      };
    return undefined;
  }

  /** Runs the steps in order; returns the failure that ended the job, if any. */
  async #runSteps(steps: Step[], jobEnv: Record<string, string>) {
    for (const step of steps) {
      const stop = this.#failureOfStop(this.#stopReason);
      if (this.#abort.signal.aborted) return stop;
      const log = await StepLog.create(this.#resultsDir, step.index).catch((error) => {
        throw toJwError(error, ErrorCode.RESULTS_UNWRITABLE, 'cannot create step log');
      });
      const record: StepRecord = {
        index: step.index,
        name: step.name,
        command: step.run ?? `uses: ${step.uses}`,
        status: 'running',
        exitCode: null,
        signal: null,
        durationMs: null,
        log: path.basename(log.file),
        startedAt: new Date().toISOString(),
      };
      this.#manifest.steps.push(record);
      await this.#save();
      this.#emit('running', { step: { index: step.index, name: step.name, logFile: log.file } });
      const outcome = await this.#runOne(step, log, jobEnv);
      Object.assign(record, {
        status: outcome.status,
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: outcome.durationMs,
        ...(outcome.error ? { error: outcome.error } : {}),
      });
      await this.#save();
      if (outcome.stoppedBy && outcome.stoppedBy !== 'timeout')
        return this.#failureOfStop(this.#stopReason);
      if (outcome.status === 'success' || step.continueOnError) continue;
      if (outcome.status === 'timeout') {
        return {
          status: 'timeout' as const,
          code: ErrorCode.TIMEOUT,
          message: `step ${step.index} (${step.name}) timed out`,
          exitCode: 124,
        };
      }
      return {
        status: 'failed' as const,
        code: ErrorCode.STEP_FAILED,
        message: `step ${step.index} (${step.name}) failed: ${outcome.error ?? 'error'}`,
        exitCode: outcome.exitCode ?? exitCodeOfSignal(outcome.signal),
      };
    }
    return this.#failureOfStop(this.#stopReason);
  }

  async #runOne(step: Step, log: StepLog, jobEnv: Record<string, string>): Promise<StepOutcome> {
    const stepAbort = new AbortController();
    const forward = () => stepAbort.abort(this.#abort.signal.reason);
    if (this.#abort.signal.aborted) forward();
    else this.#abort.signal.addEventListener('abort', forward, { once: true });
    const timer =
      step.timeoutMs === undefined
        ? undefined
        : setTimeout(() => stepAbort.abort('timeout'), step.timeoutMs);
    try {
      const workspace = this.#workspace!;
      const env = buildStepEnv(this.#o.env, this.#o.secretEnv ?? [], jobEnv, step.env, {
        JW_JOB_ID: this.#request.id,
        JW_WORKSPACE: workspace,
        JW_RESULTS_DIR: this.#resultsDir,
        JW_STEP_INDEX: String(step.index),
        JW_ATTEMPT: String(this.#manifest.attempt),
      });
      return await runStep(step, {
        workspace,
        env,
        log,
        signal: stepAbort.signal,
        killGraceMs: this.#o.killGraceMs,
        ...(this.#o.handlers ? { handlers: this.#o.handlers } : {}),
      });
    } finally {
      if (timer) clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', forward);
      await log.close();
    }
  }

  async #finish(
    failure:
      | { status: FinalStatus; code: ErrorCode; message: string; exitCode: number }
      | undefined,
  ): Promise<JobOutcome> {
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
    const result = resultMessageOf(this.#manifest, this.#o.worker.id);
    this.#emit(result.status, {
      exitCode: result.exitCode,
      ...(failure ? { error: failure.message, errorCode: failure.code } : {}),
    });
    return { kind: 'finished', result, manifest: this.#manifest, delivered: () => claim.release() };
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
      this.#o.logger.warn(
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
