import { ErrorCode, toJwError } from './errors.js';
import type { JobEvent } from './events.js';
import type { Step } from './job-definition.js';
import type { Logger } from './logger.js';
import { isFinalStatus, type Manifest } from './manifest.js';
import { maskText } from './mask.js';
import {
  type AttemptStart,
  type CombinedAttemptObserver,
  combineObservers,
  type PhaseEnd,
} from './observer.js';
import {
  type JobProgress,
  ProgressFile,
  type ProgressReport,
  ProgressThrottle,
  progressFileOf,
} from './progress.js';
import type { JobRequest } from './request.js';
import type { RunJobOptions } from './run-job-options.js';
import type { StepOutcome } from './run-steps.js';

/** What a step is run with besides its own settings: env to add and where reports go. */
export interface StepWatch {
  env: Record<string, string>;
  progress(report: ProgressReport): void;
}

/**
 * An attempt as its observers see it (metrics, traces: phases, steps, its end), and the
 * progress its steps report, sent on as rate-limited `running` events and kept in the
 * manifest.
 */
export class AttemptWatch {
  readonly #observer: CombinedAttemptObserver;
  readonly #throttle: ProgressThrottle<JobProgress>;
  readonly #manifest: Manifest;
  readonly #logger: Logger;
  readonly #started = Date.now();

  constructor(
    request: JobRequest,
    options: RunJobOptions,
    manifest: Manifest,
    recovered: boolean,
    emit: (extra: Partial<JobEvent>) => void,
  ) {
    this.#manifest = manifest;
    this.#logger = options.logger;
    const start: AttemptStart = {
      jobId: request.id,
      attempt: manifest.attempt,
      workerId: options.worker.id,
      recovered,
      ...(request.traceparent
        ? {
            trace: {
              traceparent: request.traceparent,
              ...(request.tracestate ? { tracestate: request.tracestate } : {}),
            },
          }
        : {}),
    };
    this.#observer = combineObservers(options.observers ?? [], options.logger).attempt(start);
    this.#throttle = new ProgressThrottle(
      (progress) => emit({ progress }),
      options.progressIntervalMs ?? 500,
    );
  }

  /** Runs staging or the sync, telling the observers how long it took and what it moved. */
  async phase<T>(
    kind: 'stage' | 'sync',
    work: () => Promise<{ value: T; files: number; bytes: number }>,
  ): Promise<T> {
    const observer = kind === 'stage' ? this.#observer.stage() : this.#observer.sync();
    const started = Date.now();
    const end = (result: Omit<PhaseEnd, 'durationMs'>) =>
      observer.end({ durationMs: Date.now() - started, ...result });
    try {
      const { value, files, bytes } = await work();
      end({ files, bytes });
      return value;
    } catch (error) {
      const fallback = kind === 'stage' ? ErrorCode.STAGING_FAILED : ErrorCode.SYNC_FAILED;
      end({ files: 0, bytes: 0, errorCode: toJwError(error, fallback).code });
      throw error;
    }
  }

  /**
   * Runs one step with its observer's env (`TRACEPARENT`) and a progress file
   * (`JW_PROGRESS`) beside the workspace. The step's last report is sent before it returns.
   */
  async step(
    step: Step,
    workspace: string,
    run: (watch: StepWatch) => Promise<StepOutcome>,
    owner?: { uid: number; gid: number },
    secrets: readonly string[] = [],
  ): Promise<StepOutcome> {
    const observer = this.#observer.step({ index: step.index, name: step.name });
    // Reports leave the worker (events, the manifest): masked like the step's log (SPEC 3).
    const mask = (text: string) => maskText(text, secrets);
    const shown = { ...step, name: mask(step.name) };
    const progress = (report: ProgressReport) =>
      this.#report(shown, report.message ? { ...report, message: mask(report.message) } : report);
    const file = await ProgressFile.create(progressFileOf(workspace), progress, 200, owner).catch(
      (error) => {
        this.#logger.warn({ err: error, jobId: this.#manifest.jobId }, 'no progress file for step');
        return undefined;
      },
    );
    try {
      const outcome = await run({
        env: { ...observer.env, ...(file ? { JW_PROGRESS: file.file } : {}) },
        progress,
      });
      observer.end(outcome);
      return outcome;
    } finally {
      await file?.close();
      this.#throttle.flush();
    }
  }

  #report(step: Step, report: ProgressReport): void {
    const progress: JobProgress = {
      ...report,
      step: { index: step.index, name: step.name },
      at: new Date().toISOString(),
    };
    this.#manifest.progress = progress;
    this.#throttle.push(progress);
  }

  /**
   * The attempt is over: its manifest's status, or `error` (RESULTS_UNWRITABLE) when its
   * results could not be written, or `requeued` when it was given back unfinished.
   */
  end(unwritable: boolean, shutdown: boolean): void {
    this.#throttle.flush();
    const m = this.#manifest;
    const requeued = unwritable ? shutdown : !isFinalStatus(m.status);
    const errorCode = unwritable ? ErrorCode.RESULTS_UNWRITABLE : m.errorCode;
    this.#observer.end({
      status: requeued ? 'requeued' : isFinalStatus(m.status) && !unwritable ? m.status : 'error',
      exitCode: requeued ? null : unwritable ? 1 : m.exitCode,
      durationMs: Date.now() - this.#started,
      ...(!requeued && errorCode ? { errorCode } : {}),
    });
  }
}
