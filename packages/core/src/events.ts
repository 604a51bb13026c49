import type { ErrorCode } from './errors.js';
import type { FinalStatus } from './manifest.js';
import type { JobProgress } from './progress.js';

/** A job's states in order (SPEC 7): then one final status, or `requeued` when given back. */
export type JobState = 'claimed' | 'staging' | 'running' | 'syncing' | FinalStatus | 'requeued';

/** A state change of a job. Transports forward these as progress messages. */
export interface JobEvent {
  jobId: string;
  state: JobState;
  attempt: number;
  workerId: string;
  /** ISO time of the change. */
  at: string;
  /** While `running`: the step that started, with its log file path (absolute). */
  step?: { index: number; name: string; logFile: string };
  /**
   * A progress report from inside a running step (`$JW_PROGRESS`, a handler's
   * `ctx.progress`), rate-limited; state stays `running`. Absent on state changes.
   */
  progress?: JobProgress;
  exitCode?: number | null;
  error?: string;
  errorCode?: ErrorCode;
}

export function isFinalState(state: JobState): state is FinalStatus {
  return (
    state !== 'claimed' &&
    state !== 'staging' &&
    state !== 'running' &&
    state !== 'syncing' &&
    state !== 'requeued'
  );
}
