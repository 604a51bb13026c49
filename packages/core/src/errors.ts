/** Stable error codes (SPEC 5). Controllers match on these, never on messages. */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  BAD_JOB: 'BAD_JOB',
  STAGING_FAILED: 'STAGING_FAILED',
  STEP_FAILED: 'STEP_FAILED',
  TIMEOUT: 'TIMEOUT',
  CANCELLED: 'CANCELLED',
  SYNC_FAILED: 'SYNC_FAILED',
  /** Another worker took over this job's claim while it ran (lease lost). */
  CLAIM_LOST: 'CLAIM_LOST',
  /** Writing results/ on the shared drive failed. */
  RESULTS_UNWRITABLE: 'RESULTS_UNWRITABLE',
  /** The worker's own workspaces dir cannot be written: a fault of the worker, not of the job. */
  WORKSPACES_UNWRITABLE: 'WORKSPACES_UNWRITABLE',
  /** The transport lost its broker or backend for good. */
  TRANSPORT_FAILED: 'TRANSPORT_FAILED',
  /** Settings given to a worker or app are invalid. */
  BAD_CONFIG: 'BAD_CONFIG',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface JwErrorOptions {
  cause?: unknown;
  /** The job id, when one is known and valid. */
  jobId?: string;
}

/** The one error type of jw: a stable `code` plus a message for people. */
export class JwError extends Error {
  readonly code: ErrorCode;
  readonly jobId: string | undefined;

  constructor(code: ErrorCode, message: string, options: JwErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JwError';
    this.code = code;
    this.jobId = options.jobId;
  }
}

export function isJwError(value: unknown, code?: ErrorCode): value is JwError {
  return value instanceof JwError && (code === undefined || value.code === code);
}

/** Wraps anything thrown into a JwError with the given code, keeping JwErrors as they are. */
export function toJwError(error: unknown, code: ErrorCode, prefix?: string): JwError {
  if (error instanceof JwError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new JwError(code, prefix ? `${prefix}: ${message}` : message, { cause: error });
}
