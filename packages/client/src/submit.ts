import { realpath } from 'node:fs/promises';
import path from 'node:path';
import {
  BadRequestError,
  isFinalStatus,
  type JobEvent,
  type Manifest,
  parseRequest,
  type ResultMessage,
  type StepInput,
} from '@jw/core';
import type { CancelOutcome, Channel, SubmitRequest } from './channel.js';
import { ClientError, WaitTimeoutError } from './errors.js';
import { checkJobId, generateJobId } from './job-id.js';
import { prepareJob, resolveJobsDir } from './prepare.js';
import { type FollowLogsOptions, followLogs, type LogChunk } from './step-logs.js';
import { openChannel } from './via.js';

export interface SubmitJobOptions {
  /** `file:QUEUE_DIR`, `mqtt://…`, `nats://…` or `http://…` (the reference backend). */
  via: string;
  /** The jobs dir the workers read (SPEC 1). */
  jobsDir: string;
  /** A local job dir (with its job.json): copied to `{jobsDir}/{id}`, or used in place when it is there. */
  dir?: string;
  /** Or the steps of a job.json written for the job. */
  steps?: StepInput[];
  /** Default: `job-{utc date}-{time}-{random}`. With `dir` in the jobs dir, that dir's name. */
  id?: string;
  env?: Record<string, string>;
  /** The job's time limit (the request's `timeoutSeconds`). */
  timeoutSeconds?: number;
  /** W3C trace context the job's trace joins (SPEC 11). */
  traceparent?: string;
  /** Re-run a job that already has a final result. */
  force?: boolean;
}

export interface JobHandle {
  readonly id: string;
  readonly jobDir: string;
  /** The job's result message; rejects with WaitTimeoutError after `timeoutMs`. */
  result(options?: { timeoutMs?: number }): Promise<ResultMessage>;
  /** The step logs as they are written, until the job ends. */
  logs(options?: Pick<FollowLogsOptions, 'signal'>): AsyncIterable<LogChunk>;
  /** Progress and state changes, until the job ends. */
  events(): AsyncIterable<JobEvent>;
  cancel(reason?: string): Promise<CancelOutcome>;
  /** Stops waiting and closes the connection (done by itself once the result came). */
  close(): Promise<void>;
}

function badRequest(error: unknown): never {
  if (error instanceof BadRequestError) throw new ClientError(`bad request: ${error.message}`);
  throw error;
}

/** The id to use: given, the name of a job dir already in the jobs dir, or a new one. */
async function idOf(options: SubmitJobOptions): Promise<string> {
  if (options.id !== undefined) return checkJobId(options.id);
  if (options.dir) {
    const [parent, jobsDir] = await Promise.all([
      realpath(path.dirname(path.resolve(options.dir))).catch(() => undefined),
      resolveJobsDir(options.jobsDir),
    ]);
    if (parent === jobsDir) return checkJobId(path.basename(path.resolve(options.dir)));
  }
  return generateJobId();
}

/**
 * Puts a job on the shared drive and sends its request. The result and progress are
 * subscribed to before the request goes out, so nothing is missed.
 */
export async function submitJob(options: SubmitJobOptions): Promise<JobHandle> {
  if (!options.dir === !options.steps) throw new ClientError('give either dir or steps');
  const id = await idOf(options);
  const channel = await openChannel(options.via);
  try {
    const prepared = await prepareJob({ ...options, id });
    const request: SubmitRequest = {
      id,
      ...(prepared.requestCarriesSettings && options.env ? { env: options.env } : {}),
      ...(prepared.requestCarriesSettings && options.timeoutSeconds !== undefined
        ? { timeoutSeconds: options.timeoutSeconds }
        : {}),
      ...(options.force ? { force: true } : {}),
      ...(options.traceparent ? { traceparent: options.traceparent } : {}),
    };
    try {
      parseRequest({ ...request });
    } catch (error) {
      badRequest(error);
    }
    const watch = await channel.watch(id, prepared.jobDir);
    try {
      await channel.send(request);
    } catch (error) {
      await watch.close();
      throw error;
    }
    return handleOf(id, prepared.jobDir, channel, watch);
  } catch (error) {
    await channel.close();
    throw error;
  }
}

function handleOf(
  id: string,
  jobDir: string,
  channel: Channel,
  watch: Awaited<ReturnType<Channel['watch']>>,
): JobHandle {
  let done = false;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= watch.close().then(() => channel.close());
    return closed;
  };
  const settled = watch.result.then(
    async (result) => {
      done = true;
      await close();
      return result;
    },
    async (error: unknown) => {
      await close();
      throw error;
    },
  );
  settled.catch(() => {});
  // An earlier run's final manifest is not this run's until the result says so.
  const accept = (m: Manifest) => !isFinalStatus(m.status) || done;
  return {
    id,
    jobDir,
    result(o = {}) {
      if (o.timeoutMs === undefined) return settled;
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WaitTimeoutError(id, o.timeoutMs!)), o.timeoutMs);
      });
      return Promise.race([settled, limit]).finally(() => clearTimeout(timer));
    },
    logs(o = {}) {
      return followLogs(jobDir, { ...o, accept, until: settled });
    },
    events() {
      return watch.events;
    },
    async cancel(reason) {
      if (done) return { sent: false, detail: `job ${id} has ended` };
      return channel.cancel(id, reason);
    },
    close,
  };
}

/** Sends a cancel for a job (SPEC 7's cancel topic or subject, the queue's cancel/ folder, the backend's cancel). */
export async function cancelJob(via: string, id: string, reason?: string): Promise<CancelOutcome> {
  const channel = await openChannel(via);
  try {
    return await channel.cancel(checkJobId(id), reason);
  } finally {
    await channel.close();
  }
}

/** The workers the heartbeats name: MQTT's retained statuses, NATS heartbeats, the backend's list. */
export async function listWorkers(via: string, options: Parameters<Channel['workers']>[0] = {}) {
  const channel = await openChannel(via);
  try {
    return await channel.workers(options);
  } finally {
    await channel.close();
  }
}
