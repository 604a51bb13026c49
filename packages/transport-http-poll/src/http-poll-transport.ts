import { mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type Delivery,
  ErrorCode,
  isFinalStatus,
  JwError,
  type Logger,
  readManifest,
  type Transport,
  type TransportContext,
} from '@jw/core';
import { AgentClient } from './agent-client.js';
import { Backoff, sleep } from './backoff.js';
import { CombinedLog } from './combined-log.js';
import { Heartbeat } from './heartbeat.js';
import { InFlight } from './in-flight.js';
import { JobMonitor } from './job-monitor.js';
import { type BackendJob, parseNextJob, requestOf } from './job-payload.js';
import {
  type HttpPollTransportOptions,
  type ResolvedHttpPollOptions,
  resolveOptions,
} from './options.js';
import { StatusOutbox } from './status-outbox.js';
import { type FinalAgentStatus, type StatusReport, statusWordOf } from './status-words.js';

/** The HTTP polling transport, plus the agent's "finish the current job, then exit". */
export interface HttpPollTransport extends Transport {
  /** Takes no more jobs: `next` resolves null from now on, so running jobs finish and the worker ends (SIGUSR1). */
  drain(): void;
  /** `{sharedDir}/jobs`: the jobs dir the worker must use. */
  readonly jobsDir: string;
}

type PollOutcome =
  | { kind: 'job'; delivery: Delivery }
  /** 204: nothing to do. */
  | { kind: 'empty' }
  /**
   * A job that could not run was reported failed; poll again soon, backing off
   * so a backend that hands out the same bad job forever is not hammered.
   */
  | { kind: 'skipped' }
  /** No usable answer: back off. */
  | { kind: 'error' };

/** Env var of the bearer token; never passed to steps. */
export const TOKEN_ENV = 'AGENT_TOKEN';

/**
 * Creates the transport that speaks the research backend's agent protocol
 * (SPEC 8): polls `next-job`, reports statuses, sends heartbeats, watches each
 * running job's backend status. Throws JwError(BAD_CONFIG) on bad options.
 */
export function createHttpPollTransport(options: HttpPollTransportOptions): HttpPollTransport {
  return new HttpPoll(resolveOptions(options));
}

class HttpPoll implements HttpPollTransport {
  readonly name = 'http-poll';
  readonly secretEnv = [TOKEN_ENV];
  readonly jobsDir: string;

  private readonly client: AgentClient;
  private readonly backoff: Backoff;
  private readonly drainController = new AbortController();
  private readonly running = new Map<Delivery, string>();
  private readonly held: Delivery[] = [];
  private context!: TransportContext;
  private logger!: Logger;
  private outbox!: StatusOutbox;
  private inFlight!: InFlight;
  private heartbeat!: Heartbeat;
  private inflightPoll: Promise<PollOutcome> | undefined;
  private pollFailures = 0;
  private last: { jobId: string; status: FinalAgentStatus } | undefined;

  constructor(private readonly options: ResolvedHttpPollOptions) {
    this.jobsDir = path.join(options.sharedDir, 'jobs');
    this.client = new AgentClient({
      server: options.server,
      token: options.token,
      timeoutMs: options.requestTimeoutMs,
    });
    this.backoff = new Backoff({
      initialMs: Math.min(1_000, options.retryMaxMs),
      maxMs: options.retryMaxMs,
    });
  }

  async start(context: TransportContext): Promise<void> {
    this.context = context;
    this.logger = context.logger;
    if (path.resolve(context.jobsDir) !== path.resolve(this.jobsDir)) {
      // The backend and other agents find jobs at {shared dir}/jobs; another root splits them.
      this.logger.warn(
        { jobsDir: context.jobsDir, expected: this.jobsDir },
        "the worker's jobs dir is not {shared dir}/jobs",
      );
    }
    const shared = await stat(this.options.sharedDir).catch(() => undefined);
    // Creating a missing shared dir would hide an NFS mount that is not there.
    if (!shared?.isDirectory()) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `shared dir ${this.options.sharedDir} does not exist`,
      );
    }
    try {
      await mkdir(this.jobsDir, { recursive: true });
    } catch (error) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `cannot create ${this.jobsDir}: ${(error as Error).message}`,
      );
    }
    this.outbox = new StatusOutbox({
      dir: this.options.stateDir,
      client: this.client,
      logger: this.logger,
      retryInitialMs: Math.min(1_000, this.options.retryMaxMs),
      retryMaxMs: this.options.retryMaxMs,
    });
    try {
      await this.outbox.open();
    } catch (error) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `state dir ${this.options.stateDir} is not writable: ${(error as Error).message}`,
      );
    }
    this.inFlight = new InFlight(this.options.stateDir, this.logger);
    await this.settleLeftovers();
    this.heartbeat = new Heartbeat({
      workerId: context.workerId,
      client: this.client,
      logger: this.logger,
      intervalMs: this.options.heartbeatIntervalMs,
      info: () => this.heartbeatInfo(),
    });
    this.heartbeat.start();
    this.logger.info(
      { server: this.options.server, sharedDir: this.options.sharedDir },
      'polling for jobs',
    );
  }

  /**
   * Jobs an earlier run took and never settled. One whose `result.json` is final
   * ended just before that run was killed: its final status goes to the outbox.
   * One that is not final was killed with the run; the backend hands it out again
   * once it takes it for stale, and the claim's dead pid lets the next attempt run.
   */
  private async settleLeftovers(): Promise<void> {
    for (const record of await this.inFlight.left()) {
      const jobId = record.job_id;
      if (!(await this.outbox.has(jobId))) {
        const manifest = await readManifest(record.job_dir);
        if (manifest && isFinalStatus(manifest.status)) {
          this.logger.info(
            { jobId, status: manifest.status },
            'a job ended before the agent was stopped; sending its final status',
          );
          await this.outbox.keep({
            job_id: jobId,
            worker_id: this.context.workerId,
            status: statusWordOf(manifest.status),
            ...(manifest.exitCode === null ? {} : { exit_code: manifest.exitCode }),
            ...(manifest.error === undefined ? {} : { error: manifest.error }),
          });
        } else {
          this.logger.info(
            { jobId },
            'a job was running when the agent was stopped; the backend hands it out again',
          );
        }
      }
      await this.inFlight.remove(jobId);
    }
  }

  drain(): void {
    if (this.drainController.signal.aborted) return;
    this.logger?.info('finishing the running jobs, then exiting; no new jobs are taken');
    this.drainController.abort();
  }

  async next(signal: AbortSignal): Promise<Delivery | null> {
    const held = this.held.shift();
    if (held) return held;
    const wake = AbortSignal.any([signal, this.drainController.signal]);
    while (!wake.aborted) {
      // A poll is never abandoned: the backend may already have handed us a job.
      this.inflightPoll ??= this.pollOnce().finally(() => {
        this.inflightPoll = undefined;
      });
      const poll = this.inflightPoll;
      const outcome = await raceAbort(poll, signal);
      if (outcome === undefined) {
        void poll.then((late) => late.kind === 'job' && this.held.push(late.delivery));
        return null;
      }
      if (outcome.kind === 'job') {
        this.backoff.reset();
        return outcome.delivery;
      }
      if (outcome.kind === 'empty') {
        this.backoff.reset();
        await sleep(this.options.pollIntervalMs, wake);
      } else {
        await sleep(this.backoff.next(), wake);
      }
    }
    return null;
  }

  async stop(): Promise<void> {
    this.drainController.abort();
    await this.inflightPoll;
    for (const delivery of this.held.splice(0)) {
      await delivery.release('shutdown', 0);
    }
    await this.heartbeat.stop();
    const left = await this.outbox.flush();
    if (left > 0) {
      this.logger.warn(
        { count: left, stateDir: this.options.stateDir },
        'final statuses not delivered; they are sent when the agent starts again',
      );
    }
    await this.outbox.close();
  }

  private async pollOnce(): Promise<PollOutcome> {
    const { logger } = this;
    let text: string | undefined;
    try {
      text = await this.client.nextJob(this.context.workerId);
    } catch (error) {
      this.pollFailed(error instanceof Error ? error.message : String(error));
      return { kind: 'error' };
    }
    if (this.pollFailures > 0)
      logger.info({ failures: this.pollFailures }, 'backend answers again');
    this.pollFailures = 0;
    if (text === undefined) return { kind: 'empty' };
    const parsed = parseNextJob(text);
    if (parsed.kind === 'garbage') {
      this.pollFailed(`next-job: ${parsed.reason}`);
      return { kind: 'error' };
    }
    if (parsed.kind === 'invalid') {
      await this.reportUnrunnable(parsed.jobId, parsed.reason);
      return { kind: 'skipped' };
    }
    let body: ReturnType<typeof requestOf>;
    try {
      body = requestOf(parsed.job, this.options);
    } catch (error) {
      await this.reportUnrunnable(parsed.job.jobId, (error as Error).message);
      return { kind: 'skipped' };
    }
    logger.info({ jobId: parsed.job.jobId, jobName: parsed.job.jobName }, 'received job');
    await this.inFlight.add(parsed.job.jobId, path.join(this.context.jobsDir, parsed.job.jobId));
    return { kind: 'job', delivery: this.deliveryOf(parsed.job, body) };
  }

  private pollFailed(reason: string): void {
    // The first failure of an outage is a warning; the rest would flood the log.
    const log = this.pollFailures === 0 ? this.logger.warn : this.logger.debug;
    log.call(
      this.logger,
      { reason, failures: this.pollFailures + 1 },
      'polling failed; backing off',
    );
    this.pollFailures++;
  }

  private async reportUnrunnable(jobId: string, reason: string): Promise<void> {
    this.logger.warn({ jobId, reason }, 'job cannot run; reporting it failed');
    this.last = { jobId, status: 'failed' };
    await this.outbox.send({
      job_id: jobId,
      status: 'failed',
      worker_id: this.context.workerId,
      error: reason,
    });
  }

  private deliveryOf(job: BackendJob, body: ReturnType<typeof requestOf>): Delivery {
    const { jobId } = job;
    const { workerId } = this.context;
    const logFile = path.join(this.context.jobsDir, jobId, 'logs', `${jobId}.log`);
    const combined = new CombinedLog(logFile, this.logger, this.options.logCopyIntervalMs);
    let cancelled = false;
    let settled = false;
    const cancel = () => {
      if (cancelled || !monitor.cancelWord) return;
      cancelled = this.context.cancelJob(jobId, `the backend asked: ${monitor.cancelWord}`);
    };
    const monitor = new JobMonitor({
      jobId,
      workerId,
      client: this.client,
      logger: this.logger,
      intervalMs: this.options.statusPollIntervalMs,
      onStopRequest: cancel,
    });
    const settle = async (report: Omit<StatusReport, 'job_id' | 'worker_id'> | undefined) => {
      if (settled) return;
      settled = true;
      // The monitor's calls end first, so no `running` reaches the backend after the final word.
      await monitor.stop();
      await combined.close();
      this.running.delete(delivery);
      let safe = true;
      if (report) {
        this.last = { jobId, status: report.status as FinalAgentStatus };
        safe = await this.outbox.send({ job_id: jobId, worker_id: workerId, ...report });
      }
      // Kept until the final status is safe, so a restart finds a job that ended meanwhile.
      if (safe) await this.inFlight.remove(jobId);
      void this.heartbeat.beat();
      if (!safe) {
        // The claim stays (the result is not taken): a restarted agent sends it from result.json.
        throw new JwError(
          ErrorCode.TRANSPORT_FAILED,
          `final status of ${jobId} neither reached the backend nor could be stored`,
        );
      }
    };
    const delivery: Delivery = {
      body,
      label: `job ${jobId}`,
      onEvent: (event) => {
        if (event.state === 'claimed' || event.state === 'staging' || event.state === 'running') {
          monitor.reportRunning();
        }
        if (event.state === 'running' && event.step) void combined.follow(event.step.logFile);
        cancel();
      },
      complete: (result) =>
        settle({
          status: statusWordOf(result.status, monitor.cancelWord),
          ...(result.exitCode === null ? {} : { exit_code: result.exitCode }),
          ...(result.error === undefined ? {} : { error: result.error }),
        }),
      reject: (error, result) =>
        settle({
          status: 'failed',
          ...(result?.exitCode == null ? {} : { exit_code: result.exitCode }),
          error: error.message,
        }),
      release: async (reason) => {
        if (reason === 'busy') {
          // Another agent holds a fresh claim on this job and reports it; we stay silent.
          this.logger.warn(
            { jobId },
            'job is claimed by another worker; leaving it to that worker',
          );
          return settle(undefined);
        }
        return settle({
          status: 'failed',
          error:
            reason === 'shutdown'
              ? 'the agent shut down before the job finished'
              : 'the job could not run on this agent (shared drive unavailable)',
        });
      },
    };
    this.running.set(delivery, jobId);
    monitor.start();
    return delivery;
  }

  private heartbeatInfo(): Record<string, unknown> {
    const active = new Set([...this.running.values(), ...this.context.activeJobs()]);
    return {
      active_jobs: [...active],
      version: this.options.version,
      last_job_id: this.last?.jobId ?? null,
      last_job_status: this.last?.status ?? null,
      state: active.size > 0 ? 'busy' : this.drainController.signal.aborted ? 'draining' : 'idle',
      concurrency: this.context.concurrency,
      hostname: os.hostname(),
      pid: process.pid,
    };
  }
}

/** The promise's value, or undefined when `signal` aborts first. */
async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return undefined;
  let onAbort!: () => void;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
