import { access } from 'node:fs/promises';
import path from 'node:path';
import {
  claimJob,
  findStaleJobs,
  isFinalStatus,
  JOB_FILE,
  leaseRemaining,
  RESULTS_DIR,
  readClaim,
  readManifest,
  type TransportContext,
} from '@jw/core';
import { type Held, heldRecovered } from './held.js';
import type { Inbox } from './inbox.js';

/** Core's default, for a context that does not say (an older worker). */
const DEFAULT_LEASE_MS = 30_000;

/**
 * Whether `{ id }` alone can run a stale job: its expired claim keeps the request that
 * started it (core runs that again), it has a job.json, or it has a final result whose
 * message may not have been sent (core sends it again). A job whose steps came in the
 * request and whose claim kept no request cannot; its request is published again by
 * the worker that gave it back.
 */
async function runnableFromId(jobDir: string, claimHasRequest: boolean): Promise<boolean> {
  if (claimHasRequest) return true;
  if (
    await access(path.join(jobDir, JOB_FILE)).then(
      () => true,
      () => false,
    )
  )
    return true;
  const manifest = await readManifest(jobDir).catch(() => undefined);
  return manifest !== undefined && isFinalStatus(manifest.status);
}

/**
 * Jobs whose worker died (an expired claim: killed, or given back on shutdown; also a
 * final result whose message may never have been sent) become deliveries of `{ id }`.
 * Each is claimed before it is queued, so that one worker takes it, and no more are
 * queued than this worker has free slots for.
 */
export class Recovery {
  /** Recovered jobs claimed by this worker (queued or handed out) and not settled yet. */
  readonly out = new Set<string>();
  /** Stale jobs a bare `{ id }` cannot run (already warned about). */
  readonly #unrunnable = new Set<string>();
  #scan: Promise<void> | undefined;
  /** Stale jobs of the last scan not yet claimed or passed over. */
  #candidates: string[] = [];
  #offering: Promise<void> | undefined;

  constructor(
    readonly context: TransportContext,
    readonly inbox: Inbox<Held>,
    readonly stopping: () => boolean,
    readonly generation: () => number,
  ) {}

  /**
   * Slots neither running a job nor promised to a recovered job. A request the broker
   * sent but this worker has not acknowledged does not hold a slot: recovered jobs go
   * first (the inbox hands them out before requests), so a backlog does not delay them.
   */
  #free(): number {
    const busy = new Set([...this.context.activeJobs(), ...this.out]).size;
    return this.context.concurrency - busy;
  }

  /** Scans once; a scan already running is not started twice. */
  scan(): Promise<void> {
    this.#scan ??= this.#run().finally(() => {
      this.#scan = undefined;
    });
    return this.#scan;
  }

  /** Resolves once no scan is running (stopping: nothing is claimed after this). */
  async idle(): Promise<void> {
    await this.#scan;
    await this.#offering;
  }

  /**
   * Claims stale jobs found by the last scan while this worker has free slots. Called
   * after each scan and whenever the worker asks for work, so a busy worker's scan is
   * not wasted and a recovered job goes to the first slot that frees.
   */
  offer(): Promise<void> {
    if (this.#candidates.length === 0 || this.stopping() || this.#free() <= 0)
      return Promise.resolve();
    this.#offering ??= this.#claimSome().finally(() => {
      this.#offering = undefined;
    });
    return this.#offering;
  }

  async #run(): Promise<void> {
    if (this.stopping()) return;
    try {
      this.#candidates = await findStaleJobs(this.context.jobsDir);
    } catch (error) {
      this.context.logger.warn({ err: error }, 'recovery scan failed');
      return;
    }
    await this.offer();
  }

  async #claimSome(): Promise<void> {
    const { context } = this;
    const logger = context.logger;
    try {
      const active = new Set(context.activeJobs());
      while (this.#candidates.length > 0) {
        if (this.stopping() || this.#free() <= 0) break;
        const id = this.#candidates.shift()!;
        if (active.has(id) || this.out.has(id)) continue;
        const jobDir = path.join(context.jobsDir, id);
        const stale = await readClaim(path.join(jobDir, RESULTS_DIR));
        if (!stale || (await leaseRemaining(stale)) > 0) continue;
        if (!(await runnableFromId(jobDir, stale.request !== undefined))) {
          if (!this.#unrunnable.has(id)) {
            this.#unrunnable.add(id);
            logger.warn(
              { jobId: id },
              'job given back without job.json or a claim holding its request; waiting for its request to be published again',
            );
          }
          continue;
        }
        // The claim keeps the request, so that a worker dying in turn leaves it runnable.
        const attempt = await claimJob(jobDir, {
          workerId: context.workerId,
          leaseMs: context.leaseMs ?? DEFAULT_LEASE_MS,
          ...(stale.request ? { request: stale.request } : {}),
        });
        // Another worker was quicker: it runs the job.
        if (attempt.kind === 'busy') continue;
        attempt.claim.keepAlive(() => {});
        if (this.stopping()) {
          await attempt.claim.expire();
          break;
        }
        logger.info(
          { jobId: id, attempt: attempt.claim.attempt, previousWorker: stale.workerId },
          'recovering a job whose worker died',
        );
        this.out.add(id);
        this.inbox.push(heldRecovered(id, this.generation(), attempt));
      }
    } catch (error) {
      logger.warn({ err: error }, 'recovery failed');
    }
  }
}
