import type { ErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import type { FinalStatus } from './manifest.js';
import type { ReleaseReason } from './transport.js';

/**
 * What a worker tells about its work, for metrics and traces. Core calls these hooks
 * and knows nothing of what listens (`@jw/cli` turns them into Prometheus metrics and
 * OpenTelemetry spans). Every hook is optional; one that throws is logged and ignored.
 */
export interface WorkerObserver {
  /** An attempt of a job starts, under its claim. Its return value follows the attempt. */
  attempt?(start: AttemptStart): AttemptObserver | undefined;
  /** A delivery was refused for good (a bad request, a results dir that cannot be written). */
  rejected?(reason: ErrorCode, jobId: string | undefined): void;
  /** A delivery was given back to be delivered again. */
  released?(reason: ReleaseReason): void;
  /** A result message waits for the transport to take it (+1), or was taken or given up (-1). */
  resultWaiting?(delta: 1 | -1): void;
}

/** W3C trace context of a request (SPEC 2 `traceparent`). */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

export interface AttemptStart {
  jobId: string;
  attempt: number;
  workerId: string;
  /** The attempt took over the expired claim of a worker that died (SPEC 6 recovery). */
  recovered: boolean;
  trace?: TraceContext;
}

/** The end of a phase (staging, sync) with how much it moved. */
export interface PhaseEnd {
  durationMs: number;
  files: number;
  bytes: number;
  /** Set when the phase failed. */
  errorCode?: ErrorCode;
}

export interface StepStart {
  index: number;
  name: string;
}

export interface StepEnd {
  status: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
}

export interface AttemptEnd {
  /** The final status, or `requeued` when the attempt was given back unfinished. */
  status: FinalStatus | 'requeued';
  exitCode: number | null;
  durationMs: number;
  errorCode?: ErrorCode;
}

export interface PhaseObserver {
  end(result: PhaseEnd): void;
}

export interface StepObserver {
  /** More env for the step (`TRACEPARENT` of its span); read once, before it starts. */
  env?: Record<string, string>;
  end(result: StepEnd): void;
}

export interface AttemptObserver {
  stage?(): PhaseObserver | undefined;
  step?(step: StepStart): StepObserver | undefined;
  sync?(): PhaseObserver | undefined;
  end?(result: AttemptEnd): void;
}

/** Observers combined by `combineObservers`: every hook there, none optional. */
export interface CombinedObserver {
  attempt(start: AttemptStart): CombinedAttemptObserver;
  rejected(reason: ErrorCode, jobId: string | undefined): void;
  released(reason: ReleaseReason): void;
  resultWaiting(delta: 1 | -1): void;
}

export interface CombinedAttemptObserver {
  stage(): PhaseObserver;
  step(step: StepStart): { env: Record<string, string>; end(result: StepEnd): void };
  sync(): PhaseObserver;
  end(result: AttemptEnd): void;
}

function guard<A extends unknown[], R>(
  logger: Logger,
  what: string,
  call: ((...args: A) => R) | undefined,
): (...args: A) => R | undefined {
  return (...args) => {
    try {
      return call?.(...args);
    } catch (error) {
      logger.warn({ err: error }, `observer failed (${what})`);
      return undefined;
    }
  };
}

/**
 * Several observers as one, each call guarded: an observer never fails a job. The
 * result has every hook, so callers need no `?.`.
 */
export function combineObservers(
  observers: readonly WorkerObserver[],
  logger: Logger,
): CombinedObserver {
  const all = <K extends keyof WorkerObserver>(key: K) =>
    observers.map((o) => guard(logger, key, o[key]?.bind(o) as never)) as ((
      ...args: Parameters<NonNullable<WorkerObserver[K]>>
    ) => ReturnType<NonNullable<WorkerObserver[K]>> | undefined)[];
  const attempts = all('attempt');
  const rejected = all('rejected');
  const released = all('released');
  const waiting = all('resultWaiting');
  return {
    attempt(start) {
      const each = attempts.map((f) => f(start)).filter((a) => a !== undefined);
      return combineAttempt(each, logger);
    },
    rejected: (reason, jobId) => {
      for (const f of rejected) f(reason, jobId);
    },
    released: (reason) => {
      for (const f of released) f(reason);
    },
    resultWaiting: (delta) => {
      for (const f of waiting) f(delta);
    },
  };
}

function combinePhase(phases: (PhaseObserver | undefined)[], logger: Logger): PhaseObserver {
  const ends = phases.map((p) => guard(logger, 'phase end', p?.end.bind(p)));
  return {
    end: (result) => {
      for (const f of ends) f(result);
    },
  };
}

function combineAttempt(attempts: AttemptObserver[], logger: Logger): CombinedAttemptObserver {
  const each = <K extends keyof AttemptObserver>(key: K) =>
    attempts.map((a) => guard(logger, key, a[key]?.bind(a) as never));
  const stage = each('stage');
  const sync = each('sync');
  const step = each('step');
  const end = each('end');
  return {
    stage: () =>
      combinePhase(
        stage.map((f) => f() as PhaseObserver | undefined),
        logger,
      ),
    sync: () =>
      combinePhase(
        sync.map((f) => f() as PhaseObserver | undefined),
        logger,
      ),
    step: (start) => {
      const steps = step.map((f) => f(start) as StepObserver | undefined);
      const ends = steps.map((s) => guard(logger, 'step end', s?.end.bind(s)));
      const env = Object.assign({}, ...steps.map((s) => s?.env ?? {})) as Record<string, string>;
      return {
        env,
        end: (result) => {
          for (const f of ends) f(result);
        },
      };
    },
    end: (result) => {
      for (const f of end) (f as (r: AttemptEnd) => void)(result);
    },
  };
}
