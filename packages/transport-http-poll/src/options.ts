import { ErrorCode, JwError } from '@jw/core';
import { z } from 'zod';

const ms = (fallback: number) => z.number().finite().min(0).default(fallback);

/** Options of the HTTP polling transport; defaults are the old agent's. */
export const httpPollOptionsSchema = z.object({
  /** Backend base URL (`OPEVA_SERVER`). */
  server: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//i.test(u), 'server must be an http:// or https:// URL')
    .default('http://localhost:8000'),
  /** The mounted shared drive (`OPEVA_SHARED_DIR`); job dirs are `{sharedDir}/jobs/{job_id}`. */
  sharedDir: z.string().min(1),
  /** Local folder where final statuses wait while the backend cannot take them. */
  stateDir: z.string().min(1),
  /** Wait after a 204 (`POLL_INTERVAL`). */
  pollIntervalMs: ms(5_000).refine((v) => v > 0, 'poll interval must be above 0'),
  /** `WORKER_HEARTBEAT_INTERVAL`; 0 = no heartbeats. */
  heartbeatIntervalMs: ms(30_000),
  /** `STATUS_POLL_INTERVAL`: status polls and `running` re-posts while a job runs; 0 = off. */
  statusPollIntervalMs: ms(10_000),
  /** Time limit of one HTTP call. */
  requestTimeoutMs: ms(30_000).refine((v) => v > 0, 'request timeout must be above 0'),
  /** Longest wait between tries after failures (back-off with jitter doubles up to it). */
  retryMaxMs: ms(60_000).refine((v) => v > 0, 'retry maximum must be above 0'),
  /** Run when the backend sends no `command`: `{job_id}`, `{job_name}`, `{config_path}`, `{shared_dir}`. */
  commandTemplate: z.string().min(1).optional(),
  /** Bearer token sent as `Authorization` on every call. */
  token: z.string().min(1).optional(),
  /** Reported in heartbeats. */
  version: z.string().default('0.0.0'),
  /** How often the combined log copies new step output. */
  logCopyIntervalMs: ms(250),
});

export type HttpPollTransportOptions = z.input<typeof httpPollOptionsSchema>;
export type ResolvedHttpPollOptions = z.output<typeof httpPollOptionsSchema>;

export function resolveOptions(input: HttpPollTransportOptions): ResolvedHttpPollOptions {
  const parsed = httpPollOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new JwError(ErrorCode.BAD_CONFIG, `http-poll transport: ${message}`);
  }
  return parsed.data;
}
