import type { AttemptWatch } from './attempt-watch.js';
import { ErrorCode, toJwError } from './errors.js';
import type { JobEvent, JobState } from './events.js';
import type { JobContainment } from './job-containment.js';
import type { Step } from './job-definition.js';
import { type Failure, stepFailure, stopFailure } from './job-outcome.js';
import type { Manifest, StepRecord } from './manifest.js';
import { maskText } from './mask.js';
import type { JobRequest } from './request.js';
import type { RunJobOptions } from './run-job-options.js';
import { runStep, type StepOutcome, type StopReason } from './run-steps.js';
import { buildStepEnv, stepSecrets } from './step-env.js';
import { StepLog, stepLogName } from './step-log.js';

/** What the step loop needs of the attempt it runs in. */
export interface AttemptContext {
  readonly request: JobRequest;
  readonly options: RunJobOptions;
  readonly resultsDir: string;
  readonly workspace: string;
  /** Updated as steps start and end; saved when a step starts (the end goes with the next write). */
  readonly manifest: Manifest;
  /** The attempt's stop: its reason is a StopReason. */
  readonly signal: AbortSignal;
  readonly containment: JobContainment;
  save(): Promise<void>;
  emit(state: JobState, extra?: Partial<JobEvent>): void;
  /** Observers and progress of the attempt. */
  readonly watch: AttemptWatch;
}

export function stopReasonOf(signal: AbortSignal): StopReason | undefined {
  return signal.aborted ? (signal.reason as StopReason) : undefined;
}

/** Runs the steps in order; returns the failure that ended the job, if any. */
export async function runAttemptSteps(
  ctx: AttemptContext,
  steps: Step[],
  jobEnv: Record<string, string>,
): Promise<Failure | undefined> {
  const mask = (text: string) => maskText(text, ctx.containment.secrets);
  for (const step of steps) {
    if (ctx.signal.aborted) return stopFailure(stopReasonOf(ctx.signal));
    const record: StepRecord = {
      index: step.index,
      name: mask(step.name),
      command: mask(step.run ?? `uses: ${step.uses}`),
      status: 'running',
      exitCode: null,
      signal: null,
      durationMs: null,
      log: stepLogName(step.index),
      startedAt: new Date().toISOString(),
    };
    ctx.manifest.steps.push(record);
    // The save also records the end of the step before: a controller sees each state
    // change (SPEC 5). It lands while the step runs, and the step's `running` event goes
    // once it has (a controller told so reads it in result.json); one that fails stops
    // the step.
    const { log, saved } = await startStep(ctx);
    const unsaved = new AbortController();
    let saveError: unknown;
    const saving = saved.then(
      () =>
        ctx.emit('running', { step: { index: step.index, name: record.name, logFile: log.file } }),
      (error: unknown) => {
        saveError = error ?? new Error('result.json not saved');
        unsaved.abort();
      },
    );
    let outcome: StepOutcome;
    try {
      outcome = await runOne(ctx, step, log, jobEnv, unsaved.signal);
    } finally {
      // No later save may overtake this one (both rename onto result.json).
      await saving;
    }
    if (saveError !== undefined) throw saveError;
    Object.assign(record, {
      status: outcome.status,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      durationMs: outcome.durationMs,
      ...(outcome.error ? { error: mask(outcome.error) } : {}),
      ...(outcome.output ? { output: outcome.output } : {}),
    });
    // Not saved here: the next step's start or the job's end (final or given back) writes it.
    if (outcome.stoppedBy && outcome.stoppedBy !== 'timeout')
      return stopFailure(stopReasonOf(ctx.signal));
    if (outcome.status === 'success' || step.continueOnError) continue;
    return stepFailure({ ...step, name: record.name }, outcome);
  }
  return stopFailure(stopReasonOf(ctx.signal));
}

/**
 * Opens the log of the step just recorded in the manifest, and starts the manifest's
 * save, which the step does not wait for (the caller awaits it after the step). A log
 * that cannot be opened is RESULTS_UNWRITABLE, thrown once the save is over.
 */
async function startStep(ctx: AttemptContext): Promise<{ log: StepLog; saved: Promise<void> }> {
  const index = ctx.manifest.steps.at(-1)!.index;
  const saved = ctx.save();
  try {
    const log = await StepLog.create(ctx.resultsDir, index);
    return { log, saved };
  } catch (error) {
    await saved.catch(() => {});
    throw toJwError(error, ErrorCode.RESULTS_UNWRITABLE, 'cannot create step log');
  }
}

/** One step under its own time limit, stopped too when the attempt stops. */
async function runOne(
  ctx: AttemptContext,
  step: Step,
  log: StepLog,
  jobEnv: Record<string, string>,
  unsaved: AbortSignal,
): Promise<StepOutcome> {
  const stepAbort = new AbortController();
  const forward = () => stepAbort.abort(ctx.signal.reason);
  if (ctx.signal.aborted) forward();
  else ctx.signal.addEventListener('abort', forward, { once: true });
  // The manifest could not be saved: the job cannot be recorded, so the step stops.
  const unrecorded = () => stepAbort.abort('cancel');
  unsaved.addEventListener('abort', unrecorded, { once: true });
  const timer =
    step.timeoutMs === undefined
      ? undefined
      : setTimeout(() => stepAbort.abort('timeout'), step.timeoutMs);
  try {
    const { options: o, workspace } = ctx;
    return await ctx.watch.step(
      step,
      workspace,
      (watch) => {
        const env = buildStepEnv(o.env, o.secretEnv ?? [], jobEnv, step.env, {
          ...watch.env,
          JW_JOB_ID: ctx.request.id,
          JW_WORKSPACE: workspace,
          JW_RESULTS_DIR: ctx.resultsDir,
          JW_STEP_INDEX: String(step.index),
          JW_ATTEMPT: String(ctx.manifest.attempt),
        });
        const { containment } = ctx;
        const secrets = stepSecrets(env, containment.secretNames);
        return runStep(step, {
          workspace,
          env,
          log,
          signal: stepAbort.signal,
          killGraceMs: o.killGraceMs,
          ...(o.handlers ? { handlers: o.handlers } : {}),
          ...(secrets.length > 0 ? { secrets } : {}),
          limits: containment.limitsOf(step),
          ...(containment.user ? { user: containment.user } : {}),
          ...(containment.cgroup ? { cgroup: containment.cgroup } : {}),
          onProgress: watch.progress,
        });
      },
      ctx.containment.user,
      ctx.containment.secrets,
    );
  } finally {
    if (timer) clearTimeout(timer);
    ctx.signal.removeEventListener('abort', forward);
    unsaved.removeEventListener('abort', unrecorded);
    await log.close();
  }
}
