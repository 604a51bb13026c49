import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isValidJobId } from '@jw/core';
import { z } from 'zod';

/**
 * A job's status on the backend. `queued` → `dispatched` (an agent took it) →
 * `running` → `finished` | `failed` | `stopped` | `canceled`. `stop_requested`
 * and `canceled` are also what a user sets to end a running job; the agent
 * sees them on `GET /status/{job_id}`.
 */
export type BackendJobStatus =
  | 'queued'
  | 'dispatched'
  | 'running'
  | 'stop_requested'
  | 'canceled'
  | 'finished'
  | 'failed'
  | 'stopped';

const FINAL_WORDS = new Set<BackendJobStatus>(['finished', 'failed', 'stopped', 'canceled']);

export interface JobRecord {
  job_id: string;
  job_name: string;
  config_path: string;
  command?: string;
  env?: Record<string, string>;
  status: BackendJobStatus;
  /** True once an agent reported a final status (or a queued job was canceled). */
  ended: boolean;
  worker_id: string | null;
  exit_code: number | null;
  error: string | null;
  submitted_at: string;
  updated_at: string;
  history: { status: BackendJobStatus; at: string; worker_id: string | null }[];
}

export interface WorkerRecord {
  worker_id: string;
  last_seen: string;
  info: Record<string, unknown>;
}

export const submitSchema = z.object({
  job_id: z.string().refine(isValidJobId, 'job_id must be 1-128 of A-Z a-z 0-9 . _ -').optional(),
  job_name: z.string().min(1).optional(),
  config_path: z.string().default(''),
  command: z.string().min(1).optional(),
  env: z.record(z.string(), z.string()).optional(),
});
export type SubmitInput = z.input<typeof submitSchema>;

const reportSchema = z.object({
  job_id: z.string().min(1),
  status: z.enum(['running', 'finished', 'failed', 'stopped', 'canceled']),
  worker_id: z.string().min(1),
  exit_code: z.number().int().nullish(),
  error: z.string().nullish(),
});
export type StatusInput = z.input<typeof reportSchema>;

export class QueueError extends Error {
  constructor(
    message: string,
    /** The HTTP answer it becomes. */
    readonly httpStatus: 400 | 404 | 409,
  ) {
    super(message);
    this.name = 'QueueError';
  }
}

/**
 * The reference backend's in-memory queue. One process, one event loop: `take`
 * hands each queued job to exactly one agent. Emits `change` with the record
 * after every status change.
 */
export interface JobQueueOptions {
  /**
   * A job handed out whose agent has not posted for this long is taken for
   * stale: queued again (or ended, when a stop was asked), so a job of a killed
   * agent runs elsewhere. Keep it well above the agents' status poll interval.
   * 0 (the default) never does.
   */
  staleAfterMs?: number;
  /** The time source of the stale check (tests pass their own). */
  now?: () => number;
}

export class JobQueue extends EventEmitter<{ change: [JobRecord] }> {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly workerMap = new Map<string, WorkerRecord>();
  /** When the agent holding each handed-out job was last heard of. */
  private readonly contact = new Map<string, number>();
  private readonly staleAfterMs: number;
  private readonly now: () => number;

  constructor(options: JobQueueOptions = {}) {
    super();
    this.staleAfterMs = options.staleAfterMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  submit(input: SubmitInput): JobRecord {
    const parsed = submitSchema.safeParse(input);
    if (!parsed.success) {
      throw new QueueError(
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
        400,
      );
    }
    const { job_id = randomUUID(), job_name, config_path, command, env } = parsed.data;
    if (this.jobs.has(job_id)) throw new QueueError(`job ${job_id} exists`, 409);
    const now = new Date().toISOString();
    const record: JobRecord = {
      job_id,
      job_name: job_name ?? job_id,
      config_path,
      ...(command === undefined ? {} : { command }),
      ...(env === undefined ? {} : { env }),
      status: 'queued',
      ended: false,
      worker_id: null,
      exit_code: null,
      error: null,
      submitted_at: now,
      updated_at: now,
      history: [],
    };
    this.jobs.set(job_id, record);
    this.set(record, 'queued', null);
    return record;
  }

  /** The oldest queued job, now dispatched to `workerId`; undefined when none waits. */
  take(workerId: string): JobRecord | undefined {
    this.expireStale();
    for (const record of this.jobs.values()) {
      if (record.status !== 'queued') continue;
      record.worker_id = workerId;
      this.contact.set(record.job_id, this.now());
      this.set(record, 'dispatched', workerId);
      return record;
    }
    return undefined;
  }

  /** Checked when an agent asks for work, so no timer runs while nobody polls. */
  private expireStale(): void {
    if (this.staleAfterMs <= 0) return;
    const now = this.now();
    for (const record of this.jobs.values()) {
      if (record.ended || record.status === 'queued') continue;
      if (now - (this.contact.get(record.job_id) ?? now) < this.staleAfterMs) continue;
      this.contact.delete(record.job_id);
      if (record.status === 'dispatched' || record.status === 'running') {
        record.worker_id = null;
        this.set(record, 'queued', null);
      } else {
        // A stop or cancel was asked and the agent went silent: nothing is left to stop.
        record.ended = true;
        record.error = `agent ${record.worker_id} stopped reporting`;
        this.set(record, record.status === 'canceled' ? 'canceled' : 'stopped', null);
      }
    }
  }

  /** An agent's `job-status` report. */
  report(input: unknown): JobRecord {
    const parsed = reportSchema.safeParse(input);
    if (!parsed.success) {
      throw new QueueError(
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
        400,
      );
    }
    const { job_id, status, worker_id, exit_code, error } = parsed.data;
    const record = this.mustGet(job_id);
    // A late `running` must not undo an end or hide a stop the agent has not seen yet.
    if (record.ended) return record;
    this.contact.set(job_id, this.now());
    if (status === 'running') {
      if (record.status === 'dispatched' || record.status === 'queued')
        this.set(record, 'running', worker_id);
      else record.updated_at = new Date().toISOString();
      return record;
    }
    record.ended = true;
    record.exit_code = exit_code ?? null;
    record.error = error ?? null;
    this.set(record, status, worker_id);
    return record;
  }

  /** Asks the agent to stop the job (reported back as `stopped`); a queued job is canceled at once. */
  requestStop(jobId: string): JobRecord {
    return this.end(jobId, 'stop_requested');
  }

  /** Cancels the job (reported back as `canceled`); a queued job is canceled at once. */
  cancel(jobId: string): JobRecord {
    return this.end(jobId, 'canceled');
  }

  heartbeat(workerId: string, info: Record<string, unknown>): WorkerRecord {
    const record = { worker_id: workerId, last_seen: new Date().toISOString(), info };
    this.workerMap.set(workerId, record);
    return record;
  }

  /**
   * Resolves with the record once the job has `status`; a final word (`canceled`
   * too, which a user also sets) counts only once an agent reported it.
   */
  waitForStatus(jobId: string, status: BackendJobStatus, timeoutMs = 60_000): Promise<JobRecord> {
    const reached = (r: JobRecord | undefined): r is JobRecord =>
      r?.status === status && (r.ended || !FINAL_WORDS.has(status));
    const now = this.jobs.get(jobId);
    if (reached(now)) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const onChange = (record: JobRecord) => {
        if (record.job_id !== jobId || !reached(record)) return;
        clearTimeout(timer);
        this.off('change', onChange);
        resolve(record);
      };
      const timer = setTimeout(() => {
        this.off('change', onChange);
        reject(
          new Error(
            `job ${jobId} did not reach ${status} in ${timeoutMs} ms (is ${this.jobs.get(jobId)?.status})`,
          ),
        );
      }, timeoutMs);
      this.on('change', onChange);
    });
  }

  get(jobId: string): JobRecord | undefined {
    return this.jobs.get(jobId);
  }

  list(): JobRecord[] {
    return [...this.jobs.values()];
  }

  workers(): WorkerRecord[] {
    return [...this.workerMap.values()];
  }

  private end(jobId: string, word: 'stop_requested' | 'canceled'): JobRecord {
    const record = this.mustGet(jobId);
    if (record.ended) throw new QueueError(`job ${jobId} has ended (${record.status})`, 409);
    if (record.status === 'queued') {
      record.ended = true;
      this.set(record, 'canceled', null);
    } else {
      this.set(record, word, record.worker_id);
    }
    return record;
  }

  private mustGet(jobId: string): JobRecord {
    const record = this.jobs.get(jobId);
    if (!record) throw new QueueError(`unknown job ${jobId}`, 404);
    return record;
  }

  private set(record: JobRecord, status: BackendJobStatus, workerId: string | null): void {
    const at = new Date().toISOString();
    record.status = status;
    record.updated_at = at;
    record.history.push({ status, at, worker_id: workerId });
    this.emit('change', record);
  }
}
