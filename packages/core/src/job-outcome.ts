import { constants as osConstants } from 'node:os';
import { ErrorCode, type JwError } from './errors.js';
import type { Step } from './job-definition.js';
import type { FinalStatus, Manifest, ResultMessage } from './manifest.js';
import type { StepOutcome, StopReason } from './run-steps.js';

export type JobOutcome =
  /**
   * A final result exists (this run's, or a stored one when `result.replayed`). Call
   * `delivered` once the result message is taken (or published, where the broker still
   * holds the delivery until its ack): it removes the job's claim, which stays until then
   * so that recovery sends the result again if this worker dies.
   * Call `settled` once the delivery is over, taken or not: it removes the workspace,
   * which the result message does not wait for (a big tree takes seconds) and which a
   * failed publish must not leave behind a live worker.
   */
  | {
      kind: 'finished';
      result: ResultMessage;
      manifest: Manifest | undefined;
      delivered?: () => Promise<void>;
      settled?: () => Promise<void>;
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

/** Why a job did not end in success, as its manifest and result record it. */
export interface Failure {
  status: FinalStatus;
  code: ErrorCode;
  message: string;
  exitCode: number;
}

/** A failure of the pipeline itself (not of a step): status `error`, exit code 1. */
export function errorFailure(error: JwError): Failure {
  return { status: 'error', code: error.code, message: error.message, exitCode: 1 };
}

/** The failure a stop of the whole job means; shutdown and claim-lost are not failures. */
export function stopFailure(reason: StopReason | undefined): Failure | undefined {
  if (reason === 'timeout')
    return { status: 'timeout', code: ErrorCode.TIMEOUT, message: 'job timed out', exitCode: 124 };
  if (reason === 'cancel')
    return {
      status: 'cancelled',
      code: ErrorCode.CANCELLED,
      message: 'job cancelled',
      exitCode: 130,
    };
  return undefined;
}

/** The failure of a step that did not succeed (and whose failure is not allowed). */
export function stepFailure(step: Step, outcome: StepOutcome): Failure {
  if (outcome.status === 'timeout')
    return {
      status: 'timeout',
      code: ErrorCode.TIMEOUT,
      message: `step ${step.index} (${step.name}) timed out`,
      exitCode: 124,
    };
  return {
    status: 'failed',
    code: ErrorCode.STEP_FAILED,
    message: `step ${step.index} (${step.name}) failed: ${outcome.error ?? 'error'}`,
    exitCode: outcome.exitCode ?? exitCodeOfSignal(outcome.signal),
  };
}

/** The result message of a job that has no manifest (refused, rejected or dead-lettered). */
export function errorResult(
  id: string,
  workerId: string,
  errorCode: ErrorCode,
  error: string,
): ResultMessage {
  return { id, status: 'error', exitCode: 1, manifestFile: null, workerId, error, errorCode };
}

/** Shell convention: a process killed by signal N exits 128 + N. */
export function exitCodeOfSignal(signal: string | null): number {
  const n = signal ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return n ? 128 + n : 1;
}

/** An error as one line for a log: its code and message, never a stack. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
