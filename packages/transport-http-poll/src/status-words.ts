import type { FinalStatus } from '@jw/core';

/** The status words the backend knows (SPEC 8). */
export type AgentStatus = 'running' | 'finished' | 'failed' | 'stopped' | 'canceled';
export type FinalAgentStatus = Exclude<AgentStatus, 'running'>;

/** What the backend answers on `GET /status/{job_id}` when it wants a job to end. */
export const STOP_WORDS = { stop_requested: 'stopped', canceled: 'canceled' } as const;
export type CancelWord = (typeof STOP_WORDS)[keyof typeof STOP_WORDS];

/**
 * Core's final status as the backend's word. A cancelled job is `stopped` or
 * `canceled` after what the backend asked for; a cancel it did not ask for
 * (shutdown) reads as `stopped`.
 */
export function statusWordOf(status: FinalStatus, cancelWord?: CancelWord): FinalAgentStatus {
  switch (status) {
    case 'success':
      return 'finished';
    case 'cancelled':
      return cancelWord ?? 'stopped';
    default:
      return 'failed';
  }
}

/** The body of `POST /api/agent/job-status`. */
export interface StatusReport {
  job_id: string;
  status: AgentStatus;
  worker_id: string;
  exit_code?: number | null;
  error?: string;
}
