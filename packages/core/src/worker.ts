import { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, rmdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, isJwError, JwError, toJwError } from './errors.js';
import type { JobEvent } from './events.js';
import { type Logger, silentLogger } from './logger.js';
import type { ResultMessage, WorkerInfo } from './manifest.js';
import { BadRequestError, DEFAULT_MAX_REQUEST_BYTES, parseRequest } from './request.js';
import { type JobOutcome, RESULTS_RETRY_DEFAULTS, runJob } from './run-job.js';
import type { StepHandler } from './run-steps.js';
import type { Delivery, Transport, TransportContext } from './transport.js';
import { removeDeadWorkspaces } from './workspaces.js';

export interface WorkerOptions {
  transport: Transport;
  jobsDir: string;
  workspacesDir: string;
  /** Default `worker-01`. */
  workerId?: string;
  /** Recorded in manifests. */
  version?: string;
  /** Jobs run at once. Default 1. */
  concurrency?: number;
  /** Jobs to handle before `run()` resolves; 0 keeps going. Default 0. */
  maxJobs?: number;
  /** Resolve `run()` after this long with nothing to do; 0 never. Default 0. */
  idleTimeoutMs?: number;
  /** Job time limit when neither request nor job.json sets one. */
  jobTimeoutMs?: number;
  /** On `stop()`, how long running jobs may go on before they are cancelled and given back. Default 30 s. */
  stopGraceMs?: number;
  /** SIGTERM → SIGKILL grace for a step's process group. Default 5 s. */
  killGraceMs?: number;
  /** Claim lease (SPEC 6). Default 30 s. */
  leaseMs?: number;
  /** Base env for steps. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** More env names never passed to steps (besides `*_PASSWORD`, `*_TOKEN`, `*_SECRET`, `*_KEY`). */
  secretEnv?: readonly string[];
  /** Named in-process steps (`{"uses": name}`). */
  handlers?: Record<string, StepHandler>;
  logger?: Logger;
  maxRequestBytes?: number;
  /** Tries of a write to a job's results/ before the job is dead-lettered as RESULTS_UNWRITABLE. Default 3. */
  resultsRetries?: number;
  /** Wait before the second try; doubles for each further one. Default 20 s (3 tries: about a minute). */
  resultsBackoffMs?: number;
  /**
   * This many jobs in a row whose results/ could not be written make `run()` fail with
   * RESULTS_UNWRITABLE (a worker fault, SPEC 10). Default 3. A run that ends with every job
   * so failed fails the same way.
   */
  resultsFaultAfter?: number;
  /** While the workspaces dir cannot be written, how often it is checked again. Default 10 s. */
  recheckMs?: number;
}

export type StopCause = 'max-jobs' | 'idle' | 'stopped' | 'ended';

export interface WorkerSummary {
  /** Deliveries that ended with a published result (run or replayed). */
  handled: number;
  rejected: number;
  reason: StopCause;
  results: ResultMessage[];
}

export interface WorkerEvents {
  /** A job's state changed. */
  event: [JobEvent];
  /** A result was handed to the transport. */
  result: [ResultMessage];
  /** A request was refused as bad. */
  rejected: [JwError];
  /** The transport is up and the jobs and workspaces dirs checked: work is taken from now on. */
  started: [];
}

const WORKSPACE_SWEEP_MS = 60_000;

export const WORKER_DEFAULTS = {
  workerId: 'worker-01',
  concurrency: 1,
  maxJobs: 0,
  idleTimeoutMs: 0,
  stopGraceMs: 30_000,
  killGraceMs: 5_000,
  leaseMs: 30_000,
  ...RESULTS_RETRY_DEFAULTS,
  resultsFaultAfter: 3,
  recheckMs: 10_000,
} as const;

/** Checks that a dir exists, is a directory and takes new entries (a probe dir made and removed). */
async function probeWritable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await rmdir(await mkdtemp(path.join(dir, '.jw-probe-')));
}

/**
 * Pulls deliveries from a transport and runs them through the job pipeline with
 * bounded concurrency, settling each one (complete / reject / release).
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly #o: Required<Pick<WorkerOptions, keyof typeof WORKER_DEFAULTS>> & WorkerOptions;
  readonly #info: WorkerInfo;
  readonly #active = new Set<Promise<void>>();
  readonly #jobs = new Map<string, AbortController>();
  readonly #logger: Logger;
  #fetch: AbortController | undefined;
  #idle = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  readonly #stopSignal = new AbortController();
  #graceDeadline: number | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #counted = 0;
  #rejected = 0;
  #fault: JwError | undefined;
  /** Set while the workspaces dir cannot be written: no work is taken (readiness is down). */
  #paused: JwError | undefined;
  #unwritable = 0;
  #unwritableStreak = 0;
  #recorded = 0;
  #results: ResultMessage[] = [];
  #running: Promise<WorkerSummary> | undefined;
  #sweeping: Promise<void> | undefined;

  constructor(options: WorkerOptions) {
    super();
    this.#o = { ...WORKER_DEFAULTS, ...options };
    // An option passed as undefined keeps its default.
    for (const [name, value] of Object.entries(WORKER_DEFAULTS)) {
      const o = this.#o as unknown as Record<string, unknown>;
      if (o[name] === undefined) o[name] = value;
    }
    if (!(this.#o.concurrency >= 1))
      throw new JwError(ErrorCode.BAD_CONFIG, 'concurrency must be at least 1');
    if (!(this.#o.maxJobs >= 0))
      throw new JwError(ErrorCode.BAD_CONFIG, 'maxJobs must be 0 or more');
    this.#logger = options.logger ?? silentLogger;
    this.#info = {
      id: this.#o.workerId,
      hostname: os.hostname(),
      pid: process.pid,
      transport: options.transport.name,
      version: options.version ?? '0.0.0',
    };
  }

  get info(): WorkerInfo {
    return this.#info;
  }

  /**
   * Whether the worker takes work (for a readiness probe): not while stopping, after a
   * fault, or while its workspaces dir cannot be written; `reason` says why not.
   */
  readiness(): { ready: true } | { ready: false; reason: string } {
    const reason = this.#fault?.message ?? this.#paused?.message;
    if (reason) return { ready: false, reason };
    return this.#stopping ? { ready: false, reason: 'stopping' } : { ready: true };
  }

  /** Ids of the jobs running now. */
  activeJobs(): string[] {
    return [...this.#jobs.keys()];
  }

  /** Cancels a running job: its steps are stopped and it ends `cancelled`. */
  cancel(jobId: string, reason = 'cancel'): boolean {
    const job = this.#jobs.get(jobId);
    if (!job) return false;
    this.#logger.info({ jobId, reason }, 'cancelling job');
    job.abort('cancel');
    return true;
  }

  /** Runs until maxJobs are handled, the idle time-out passes, `stop()` is called or the transport ends. */
  run(): Promise<WorkerSummary> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /**
   * Stops taking work, lets running jobs finish within `graceMs`, then cancels them
   * and gives their deliveries back. Resolves when `run()` has ended.
   */
  async stop(graceMs = this.#o.stopGraceMs): Promise<void> {
    // A later call may shorten the grace (a second SIGTERM), never lengthen it.
    const deadline = Date.now() + Math.max(0, graceMs);
    if (this.#graceDeadline === undefined || deadline < this.#graceDeadline) {
      this.#graceDeadline = deadline;
      if (this.#graceTimer) clearTimeout(this.#graceTimer);
      this.#graceTimer = setTimeout(
        () => {
          for (const job of this.#jobs.values()) job.abort('shutdown');
        },
        Math.min(graceMs, 2 ** 31 - 1),
      );
      this.#graceTimer.unref();
    }
    if (!this.#stopping) {
      this.#stopping = true;
      this.#stopSignal.abort();
      this.#fetch?.abort();
    }
    await Promise.allSettled([...this.#active]);
    await this.#running?.catch(() => {});
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
  }

  #context(): TransportContext {
    return {
      workerId: this.#info.id,
      jobsDir: this.#o.jobsDir,
      concurrency: this.#o.concurrency,
      leaseMs: this.#o.leaseMs,
      logger: this.#logger,
      cancelJob: (jobId, reason) => this.cancel(jobId, reason),
      activeJobs: () => this.activeJobs(),
      signal: this.#stopSignal.signal,
    };
  }

  #armIdle(): void {
    if (!this.#o.idleTimeoutMs || this.#idleTimer || this.#active.size > 0 || !this.#fetch) return;
    const fetch = this.#fetch;
    this.#idleTimer = setTimeout(() => {
      this.#idle = true;
      fetch.abort();
    }, this.#o.idleTimeoutMs);
  }

  #disarmIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /** Removes workspaces left by dead workers of this host (at start, then every minute). */
  #sweepWorkspaces(): void {
    if (this.#sweeping) return;
    this.#sweeping = removeDeadWorkspaces(this.#o.workspacesDir)
      .then((removed) => {
        if (removed.length > 0)
          this.#logger.info({ count: removed.length }, 'removed workspaces left by dead workers');
      })
      .catch((error) => this.#logger.warn({ err: error }, 'workspace sweep failed'))
      .finally(() => {
        this.#sweeping = undefined;
      });
  }

  async #loop(): Promise<WorkerSummary> {
    const { transport } = this.#o;
    // Not awaited: it must not delay the job this worker was started for.
    this.#sweepWorkspaces();
    const sweeper = setInterval(() => this.#sweepWorkspaces(), WORKSPACE_SWEEP_MS);
    sweeper.unref();
    try {
      return await this.#work(transport);
    } finally {
      clearInterval(sweeper);
      await this.#sweeping;
    }
  }

  async #work(transport: Transport): Promise<WorkerSummary> {
    try {
      await transport.start(this.#context());
    } catch (error) {
      // Told to stop while still connecting: a stop, not a fault.
      if (this.#stopping) return { handled: 0, rejected: 0, reason: 'stopped', results: [] };
      throw error;
    }
    let reason: StopCause = 'stopped';
    try {
      await this.#checkDirs().then(
        () => this.emit('started'),
        (error: JwError) => {
          this.#fault = error;
        },
      );
      while (!this.#stopping && !this.#fault) {
        if (this.#paused) {
          if (await this.#waitUntilHealed()) continue;
          reason = this.#stopping ? 'stopped' : 'idle';
          break;
        }
        const full = this.#active.size >= this.#o.concurrency;
        const quota = this.#o.maxJobs > 0 && this.#counted + this.#active.size >= this.#o.maxJobs;
        if (quota && this.#active.size === 0) {
          reason = 'max-jobs';
          break;
        }
        if (full || quota) {
          await Promise.race(this.#active);
          continue;
        }
        this.#fetch = new AbortController();
        this.#armIdle();
        let delivery: Delivery | null;
        try {
          delivery = await transport.next(this.#fetch.signal);
        } catch (error) {
          this.#fault = toJwError(error, ErrorCode.TRANSPORT_FAILED, 'transport failed');
          break;
        } finally {
          this.#fetch = undefined;
          this.#disarmIdle();
        }
        if (delivery && (this.#stopping || this.#idle || this.#paused)) {
          // Arrived as we stopped (or found we cannot run jobs): not ours to run.
          const late = delivery;
          const why = this.#paused ? 'failed' : 'shutdown';
          await this.#settle('release', () => late.release(why, 0));
          delivery = null;
        }
        if (!delivery && this.#paused && !this.#stopping && !this.#idle) continue;
        if (!delivery) {
          reason = this.#stopping ? 'stopped' : this.#idle ? 'idle' : 'ended';
          break;
        }
        this.#track(delivery);
      }
      await Promise.allSettled([...this.#active]);
    } finally {
      this.#fetch = undefined;
      await transport
        .stop()
        .catch((error) => this.#logger.warn({ err: error }, 'transport stop failed'));
    }
    if (this.#fault) throw this.#fault;
    if (this.#paused) throw this.#paused;
    if (this.#unwritable > 0 && this.#recorded === 0) {
      throw new JwError(
        ErrorCode.RESULTS_UNWRITABLE,
        `the results dir of every job (${this.#unwritable}) could not be written`,
      );
    }
    return { handled: this.#counted, rejected: this.#rejected, reason, results: this.#results };
  }

  /** SPEC 10: a jobs dir that is not there, or a workspaces dir that cannot be written, is a bad setting. */
  async #checkDirs(): Promise<void> {
    const jobs = await stat(this.#o.jobsDir).catch((error: NodeJS.ErrnoException) => {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `jobs dir ${this.#o.jobsDir} is not there (${error.code ?? error.message})`,
      );
    });
    if (!jobs.isDirectory())
      throw new JwError(ErrorCode.BAD_CONFIG, `jobs dir ${this.#o.jobsDir} is not a directory`);
    await probeWritable(this.#o.workspacesDir).catch((error: NodeJS.ErrnoException) => {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `workspaces dir ${this.#o.workspacesDir} cannot be written (${error.code ?? error.message})`,
      );
    });
  }

  /**
   * Waits while the workspaces dir is unusable, checking it every `recheckMs`. True once it
   * works again; false when the worker stops, or stays idle for its idle time-out.
   */
  async #waitUntilHealed(): Promise<boolean> {
    let idleSince = Date.now();
    while (!this.#stopping) {
      await sleep(this.#o.recheckMs, undefined, { signal: this.#stopSignal.signal }).catch(
        () => {},
      );
      if (this.#stopping) return false;
      const healed = await probeWritable(this.#o.workspacesDir).then(
        () => true,
        () => false,
      );
      if (healed) {
        this.#logger.info({ workspacesDir: this.#o.workspacesDir }, 'workspaces dir usable again');
        this.#paused = undefined;
        return true;
      }
      if (this.#active.size > 0) idleSince = Date.now();
      else if (this.#o.idleTimeoutMs && Date.now() - idleSince >= this.#o.idleTimeoutMs) {
        this.#idle = true;
        return false;
      }
    }
    return false;
  }

  #track(delivery: Delivery): void {
    const work = this.#handle(delivery).finally(() => {
      this.#active.delete(work);
      this.#armIdle();
    });
    this.#active.add(work);
  }

  /** Runs a transport call that settles a delivery; a failure there is a worker fault. */
  async #settle(what: string, call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      this.#logger.error({ err: error }, `transport could not ${what} a delivery`);
      this.#fault ??= toJwError(error, ErrorCode.TRANSPORT_FAILED, `could not ${what} a delivery`);
      this.#fetch?.abort();
    }
  }

  async #handle(delivery: Delivery): Promise<void> {
    const label = delivery.label;
    let request: ReturnType<typeof parseRequest>;
    try {
      request = parseRequest(delivery.body, this.#o.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES);
    } catch (error) {
      await this.#reject(delivery, toJwError(error, ErrorCode.BAD_REQUEST));
      return;
    }
    const abort = new AbortController();
    const owner = !this.#jobs.has(request.id);
    if (owner) this.#jobs.set(request.id, abort);
    let outcome: JobOutcome;
    try {
      this.#logger.info({ jobId: request.id, delivery: label }, 'job received');
      outcome = await runJob(request, {
        jobsDir: this.#o.jobsDir,
        workspacesDir: this.#o.workspacesDir,
        worker: this.#info,
        leaseMs: this.#o.leaseMs,
        killGraceMs: this.#o.killGraceMs,
        ...(this.#o.jobTimeoutMs ? { defaultTimeoutMs: this.#o.jobTimeoutMs } : {}),
        env: this.#o.env ?? process.env,
        secretEnv: this.#o.secretEnv ?? [],
        ...(this.#o.handlers ? { handlers: this.#o.handlers } : {}),
        signal: abort.signal,
        logger: this.#logger,
        resultsRetries: this.#o.resultsRetries,
        resultsBackoffMs: this.#o.resultsBackoffMs,
        ...(delivery.claim ? { claim: delivery.claim } : {}),
        ...(delivery.claimed ? { onClaimed: () => delivery.claimed?.() } : {}),
        onEvent: (event) => this.#forward(delivery, event),
      });
    } catch (error) {
      if (isJwError(error, ErrorCode.BAD_REQUEST) || error instanceof BadRequestError) {
        await this.#reject(delivery, error);
        return;
      }
      outcome = {
        kind: 'unwritable',
        error: toJwError(error, ErrorCode.RESULTS_UNWRITABLE),
      };
    } finally {
      if (owner) this.#jobs.delete(request.id);
    }
    switch (outcome.kind) {
      case 'finished':
        this.#counted++;
        if (outcome.result.manifestFile !== null && !outcome.result.replayed) {
          this.#recorded++;
          this.#unwritableStreak = 0;
        }
        this.#results.push(outcome.result);
        this.#logger.debug(
          { jobId: request.id, status: outcome.result.status, replayed: outcome.result.replayed },
          'job done',
        );
        await this.#settle('complete', async () => {
          await delivery.complete(outcome.result, outcome.manifest);
          // Taken by the transport: the claim that kept the result recoverable can go.
          await outcome
            .delivered?.()
            .catch((error) =>
              this.#logger.warn({ err: error, jobId: request.id }, 'could not remove the claim'),
            );
        });
        this.emit('result', outcome.result);
        return;
      case 'busy':
        this.#logger.info(
          { jobId: request.id, retryInMs: outcome.retryInMs },
          'job claimed elsewhere; given back',
        );
        await this.#settle('release', () => delivery.release('busy', outcome.retryInMs));
        return;
      case 'requeued':
        this.#logger.info({ jobId: request.id }, 'job given back on shutdown');
        await this.#settle('release', () => delivery.release('shutdown', 0));
        return;
      case 'unwritable':
        await this.#deadLetter(delivery, request.id, outcome.error);
        return;
      case 'failed':
        this.#logger.error(
          { jobId: request.id, code: outcome.error.code, err: outcome.error.message },
          'this worker cannot run jobs now; given back, taking no work until it can',
        );
        if (outcome.error.code === ErrorCode.WORKSPACES_UNWRITABLE) {
          this.#paused ??= outcome.error;
          this.#fetch?.abort();
        }
        await this.#settle('release', () => delivery.release('failed', outcome.retryInMs));
        return;
    }
  }

  /**
   * The job's results/ cannot be written (after retries): a result message says so where
   * the transport can send one, and the delivery is dead-lettered so it does not come back
   * for ever. Too many in a row are a worker fault (SPEC 10).
   */
  async #deadLetter(delivery: Delivery, jobId: string, error: JwError): Promise<void> {
    this.#counted++;
    this.#unwritable++;
    this.#unwritableStreak++;
    this.#logger.error(
      { jobId, code: error.code, err: error.message },
      'results dir cannot be written; job dead-lettered',
    );
    const result: ResultMessage = {
      id: jobId,
      status: 'error',
      exitCode: 1,
      manifestFile: null,
      workerId: this.#info.id,
      error: error.message,
      errorCode: ErrorCode.RESULTS_UNWRITABLE,
    };
    this.#results.push(result);
    await this.#settle('reject', () => delivery.reject(error, result));
    this.emit('result', result);
    if (this.#unwritableStreak >= this.#o.resultsFaultAfter) {
      this.#fault ??= new JwError(
        ErrorCode.RESULTS_UNWRITABLE,
        `the results dir of ${this.#unwritableStreak} jobs in a row could not be written`,
      );
      this.#fetch?.abort();
    }
  }

  #forward(delivery: Delivery, event: JobEvent): void {
    this.emit('event', event);
    if (!delivery.onEvent) return;
    Promise.resolve()
      .then(() => delivery.onEvent?.(event))
      .catch((error) =>
        this.#logger.warn({ err: error, jobId: event.jobId }, 'progress event not delivered'),
      );
  }

  async #reject(delivery: Delivery, error: JwError): Promise<void> {
    this.#rejected++;
    this.#logger.warn(
      { delivery: delivery.label, jobId: error.jobId, err: error.message },
      'bad request',
    );
    const result: ResultMessage | undefined = error.jobId
      ? {
          id: error.jobId,
          status: 'error',
          exitCode: 1,
          manifestFile: null,
          workerId: this.#info.id,
          error: error.message,
          errorCode: ErrorCode.BAD_REQUEST,
        }
      : undefined;
    await this.#settle('reject', () => delivery.reject(error, result));
    this.emit('rejected', error);
  }
}

export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}
