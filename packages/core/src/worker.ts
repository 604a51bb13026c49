import { EventEmitter } from 'node:events';
import os from 'node:os';
import { DeadLetterFile } from './dead-letter-file.js';
import { type DeliveryHost, newTally } from './delivery-host.js';
import { DiskGuard } from './disk-guard.js';
import { ErrorCode, JwError, toJwError } from './errors.js';
import { handleDelivery, loadStepRunner } from './handle-delivery.js';
import { type Logger, silentLogger } from './logger.js';
import type { WorkerInfo } from './manifest.js';
import { combineObservers } from './observer.js';
import type { Delivery, Transport, TransportContext } from './transport.js';
import { checkDirs, sweepWorkspacesEvery, waitUntilHealed } from './worker-health.js';
import {
  type ResolvedWorkerOptions,
  resolveWorkerOptions,
  type StopCause,
  type WorkerEvents,
  type WorkerOptions,
  type WorkerSummary,
} from './worker-options.js';

export {
  type StopCause,
  WORKER_DEFAULTS,
  type WorkerEvents,
  type WorkerOptions,
  type WorkerSummary,
} from './worker-options.js';

/**
 * Pulls deliveries from a transport and runs them through the job pipeline with
 * bounded concurrency, settling each one (complete / reject / release).
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly #o: ResolvedWorkerOptions;
  readonly #info: WorkerInfo;
  readonly #active = new Set<Promise<void>>();
  readonly #jobs = new Map<string, AbortController>();
  readonly #logger: Logger;
  readonly #tally = newTally();
  readonly #host: DeliveryHost;
  #fetch: AbortController | undefined;
  #idle = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  /** Clean-ups of finished jobs still under way (`DeliveryHost.afterwards`). */
  readonly #afterwards = new Set<Promise<void>>();
  /** Its transport is up and its dirs checked: from then on it may say it is ready. */
  #started = false;
  readonly #stopSignal = new AbortController();
  #graceDeadline: number | undefined;
  #graceTimer: NodeJS.Timeout | undefined;
  #fault: JwError | undefined;
  /** Set while the workspaces dir cannot be written: no work is taken (readiness is down). */
  #paused: JwError | undefined;
  #running: Promise<WorkerSummary> | undefined;
  /** Set when a minimum of free space is: below it no work is taken (readiness is down). */
  readonly #guard: DiskGuard | undefined;

  constructor(options: WorkerOptions) {
    super();
    this.#o = resolveWorkerOptions(options);
    this.#logger = options.logger ?? silentLogger;
    this.#info = {
      id: this.#o.workerId,
      hostname: os.hostname(),
      pid: process.pid,
      transport: options.transport.name,
      version: options.version ?? '0.0.0',
    };
    this.#guard = DiskGuard.enabled(this.#o.minFreeSpace)
      ? new DiskGuard({
          dir: this.#o.workspacesDir,
          min: this.#o.minFreeSpace,
          logger: this.#logger,
          ...(this.#o.freeSpaceReader ? { read: this.#o.freeSpaceReader } : {}),
        })
      : undefined;
    this.#host = {
      options: this.#o,
      info: this.#info,
      logger: this.#logger,
      jobs: this.#jobs,
      tally: this.#tally,
      deadLetters: this.#o.deadLetterFile
        ? new DeadLetterFile({ ...this.#o.deadLetterFile, logger: this.#logger })
        : undefined,
      events: this,
      observer: combineObservers(options.observers ?? [], this.#logger),
      settle: (what, call) => this.#settle(what, call),
      afterwards: (work) => {
        const done: Promise<void> = work()
          .catch((error) => this.#logger.warn({ err: error }, 'clean-up after a job failed'))
          .finally(() => this.#afterwards.delete(done));
        this.#afterwards.add(done);
      },
      pause: (error) => {
        this.#paused ??= error;
        this.#fetch?.abort();
      },
      fault: (error) => this.#setFault(error),
    };
  }

  get info(): WorkerInfo {
    return this.#info;
  }

  /**
   * Whether the worker takes work (for a readiness probe): not while stopping, after a
   * fault, while its workspaces dir cannot be written, its broker is away or the disk
   * guard holds, nor before it has started (transport up, dirs checked); `reason` says
   * why not.
   */
  readiness(): { ready: true } | { ready: false; reason: string } {
    const { transport } = this.#o;
    const away =
      transport.connected?.() === false
        ? `not connected to its broker (${transport.name})`
        : undefined;
    const reason = this.#fault?.message ?? this.#paused?.message ?? away ?? this.#guard?.holding;
    if (reason) return { ready: false, reason };
    if (this.#stopping) return { ready: false, reason: 'stopping' };
    return this.#started ? { ready: true } : { ready: false, reason: 'starting' };
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
      version: this.#info.version,
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

  async #loop(): Promise<WorkerSummary> {
    // Not awaited: it must not delay the job this worker was started for.
    const stopSweeping = sweepWorkspacesEvery(this.#o.workspacesDir, this.#logger);
    // A one-shot worker is there for a job: its step runner compiles while it connects.
    if (this.#o.maxJobs === 1) void loadStepRunner().catch(() => {});
    try {
      return await this.#work(this.#o.transport);
    } finally {
      await stopSweeping();
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
      await checkDirs(this.#o.jobsDir, this.#o.workspacesDir).then(
        () => {
          this.#started = true;
          this.emit('started');
        },
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
        const quota =
          this.#o.maxJobs > 0 && this.#tally.counted + this.#active.size >= this.#o.maxJobs;
        if (quota && this.#active.size === 0) {
          reason = 'max-jobs';
          break;
        }
        if (full || quota) {
          await Promise.race(this.#active);
          continue;
        }
        if (this.#guard && (await this.#guard.check())) {
          if (await this.#waitForRoom(this.#guard)) continue;
          if (!this.#stopping && !this.#idle) continue;
          reason = this.#stopping ? 'stopped' : 'idle';
          break;
        }
        // A stop or a fault that came during the check: there was no fetch out to abort.
        if (this.#stopping || this.#fault) continue;
        this.#fetch = new AbortController();
        this.#armIdle();
        // The space can go while next() waits: a check that holds ends the wait.
        const unwatch = this.#guard?.watch(this.#o.diskCheckMs, () => this.#fetch?.abort());
        let delivery: Delivery | null;
        try {
          delivery = await transport.next(this.#fetch.signal);
        } catch (error) {
          this.#fault = toJwError(error, ErrorCode.TRANSPORT_FAILED, 'transport failed');
          break;
        } finally {
          unwatch?.();
          this.#fetch = undefined;
          this.#disarmIdle();
        }
        const cannot = this.#paused ?? this.#guard?.holding;
        if (delivery && (this.#stopping || this.#idle || cannot)) {
          // Arrived as we stopped (or found we cannot run jobs): not ours to run.
          const late = delivery;
          const why = cannot ? 'failed' : 'shutdown';
          this.#host.observer.released(why);
          await this.#settle('release', () => late.release(why, 0));
          delivery = null;
        }
        if (!delivery && cannot && !this.#stopping && !this.#idle) continue;
        if (!delivery) {
          reason = this.#stopping ? 'stopped' : this.#idle ? 'idle' : 'ended';
          break;
        }
        this.#track(delivery);
      }
      await Promise.allSettled([...this.#active]);
    } finally {
      await Promise.allSettled([...this.#afterwards]);
      this.#fetch = undefined;
      await transport
        .stop()
        .catch((error) => this.#logger.warn({ err: error }, 'transport stop failed'));
    }
    if (this.#fault) throw this.#fault;
    if (this.#paused) throw this.#paused;
    const { counted, rejected, unwritable, recorded, results } = this.#tally;
    if (unwritable > 0 && recorded === 0) {
      throw new JwError(
        ErrorCode.RESULTS_UNWRITABLE,
        `the results dir of every job (${unwritable}) could not be written`,
      );
    }
    return { handled: counted, rejected, reason, results };
  }

  /**
   * Waits while the disk guard holds. True once there is room; false when the wait was
   * cut (a stop, the idle time-out, a fault): the loop's head sees which.
   */
  async #waitForRoom(guard: DiskGuard): Promise<boolean> {
    // The wait stands in for a fetch: stop(), faults and the idle timer abort it.
    this.#fetch = new AbortController();
    this.#armIdle();
    try {
      return await guard.waitForRoom(this.#o.diskCheckMs, this.#fetch.signal);
    } finally {
      this.#fetch = undefined;
      this.#disarmIdle();
    }
  }

  /** True once the workspaces dir works again; false when the worker stops or goes idle. */
  async #waitUntilHealed(): Promise<boolean> {
    const end = await waitUntilHealed({
      workspacesDir: this.#o.workspacesDir,
      recheckMs: this.#o.recheckMs,
      idleTimeoutMs: this.#o.idleTimeoutMs,
      logger: this.#logger,
      stopSignal: this.#stopSignal.signal,
      isStopping: () => this.#stopping,
      activeCount: () => this.#active.size,
    });
    if (end === 'healed') this.#paused = undefined;
    if (end === 'idle') this.#idle = true;
    return end === 'healed';
  }

  #track(delivery: Delivery): void {
    const work = handleDelivery(this.#host, delivery).finally(() => {
      this.#active.delete(work);
      this.#armIdle();
    });
    this.#active.add(work);
  }

  #setFault(error: JwError): void {
    this.#fault ??= error;
    this.#fetch?.abort();
  }

  /** Runs a transport call that settles a delivery; a failure there is a worker fault. */
  async #settle(what: string, call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      this.#logger.error({ err: error }, `transport could not ${what} a delivery`);
      this.#setFault(toJwError(error, ErrorCode.TRANSPORT_FAILED, `could not ${what} a delivery`));
    }
  }
}

export function createWorker(options: WorkerOptions): Worker {
  return new Worker(options);
}
