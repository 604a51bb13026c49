import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  type Delivery,
  ErrorCode,
  JwError,
  type Logger,
  type Transport,
  type TransportContext,
  workerHeartbeat,
} from '@jw/core';
import { AgentClient } from './agent-client.js';
import type { AgentState } from './agent-state.js';
import { Backoff, sleep } from './backoff.js';
import { Heartbeat } from './heartbeat.js';
import { InFlight } from './in-flight.js';
import { settleLeftovers } from './leftovers.js';
import {
  type HttpPollTransportOptions,
  type ResolvedHttpPollOptions,
  resolveOptions,
} from './options.js';
import { Poller, type PollOutcome } from './poll.js';
import { StatusOutbox } from './status-outbox.js';

/** The HTTP polling transport, plus the agent's "finish the current job, then exit". */
export interface HttpPollTransport extends Transport {
  /** Takes no more jobs: `next` resolves null from now on, so running jobs finish and the worker ends (SIGUSR1). */
  drain(): void;
  /** `{sharedDir}/jobs`: the jobs dir the worker must use. */
  readonly jobsDir: string;
}

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
  private readonly held: Delivery[] = [];
  private readonly startedAt = new Date();
  private state!: AgentState;
  private logger!: Logger;
  private poller!: Poller;
  private inflightPoll: Promise<PollOutcome> | undefined;

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
    const { options } = this;
    this.logger = context.logger;
    if (path.resolve(context.jobsDir) !== path.resolve(this.jobsDir)) {
      // The backend and other agents find jobs at {shared dir}/jobs; another root splits them.
      this.logger.warn(
        { jobsDir: context.jobsDir, expected: this.jobsDir },
        "the worker's jobs dir is not {shared dir}/jobs",
      );
    }
    await this.prepareJobsDir();
    const outbox = new StatusOutbox({
      dir: options.stateDir,
      client: this.client,
      logger: this.logger,
      retryInitialMs: Math.min(1_000, options.retryMaxMs),
      retryMaxMs: options.retryMaxMs,
    });
    try {
      await outbox.open({ paused: true });
    } catch (error) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `state dir ${options.stateDir} is not writable: ${(error as Error).message}`,
      );
    }
    const inFlight = new InFlight(options.stateDir, this.logger);
    await settleLeftovers(inFlight, outbox, context.workerId, this.logger);
    await outbox.resume();
    const heartbeat = new Heartbeat({
      workerId: context.workerId,
      client: this.client,
      logger: this.logger,
      intervalMs: options.heartbeatIntervalMs,
      info: () => this.heartbeatInfo(),
    });
    this.state = {
      options,
      client: this.client,
      context,
      logger: this.logger,
      outbox,
      inFlight,
      heartbeat,
      running: new Map(),
      last: undefined,
    };
    this.poller = new Poller(this.state);
    heartbeat.start();
    this.logger.info({ server: options.server, sharedDir: options.sharedDir }, 'polling for jobs');
  }

  /** `{shared dir}/jobs` is created, but never the shared dir itself. */
  private async prepareJobsDir(): Promise<void> {
    const { sharedDir } = this.options;
    const shared = await stat(sharedDir).catch(() => undefined);
    // Creating a missing shared dir would hide an NFS mount that is not there.
    if (!shared?.isDirectory()) {
      throw new JwError(ErrorCode.BAD_CONFIG, `shared dir ${sharedDir} does not exist`);
    }
    try {
      await mkdir(this.jobsDir, { recursive: true });
    } catch (error) {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `cannot create ${this.jobsDir}: ${(error as Error).message}`,
      );
    }
  }

  drain(): void {
    if (this.drainController.signal.aborted) return;
    this.logger?.info('finishing the running jobs, then exiting; no new jobs are taken');
    this.drainController.abort();
  }

  /** Whether the backend answered the last poll (readiness, `jw_broker_connected`). */
  connected(): boolean {
    return this.poller?.reachable ?? false;
  }

  async next(signal: AbortSignal): Promise<Delivery | null> {
    const held = this.held.shift();
    if (held) return held;
    const wake = AbortSignal.any([signal, this.drainController.signal]);
    while (!wake.aborted) {
      // A poll is never abandoned: the backend may already have handed us a job.
      this.inflightPoll ??= this.poller.poll().finally(() => {
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
    const { outbox, heartbeat } = this.state;
    await heartbeat.stop();
    const left = await outbox.flush();
    if (left > 0) {
      this.logger.warn(
        { count: left, stateDir: this.options.stateDir },
        'final statuses not delivered; they are sent when the agent starts again',
      );
    }
    await outbox.close();
  }

  /**
   * The heartbeat of `@jw/core`, plus the old agent's snake_case keys the backend
   * may read (`hostname`, `pid`, `version`, `state`, `concurrency` are shared).
   */
  private heartbeatInfo(): Record<string, unknown> {
    const { context, running, last } = this.state;
    const beat = workerHeartbeat({
      context,
      transport: this.name,
      startedAt: this.startedAt,
      version: this.options.version,
      draining: this.drainController.signal.aborted,
      activeJobs: [...running.values()],
    });
    return {
      ...beat,
      active_jobs: beat.activeJobs,
      last_job_id: last?.jobId ?? null,
      last_job_status: last?.status ?? null,
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
