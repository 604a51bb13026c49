import { access } from 'node:fs/promises';
import path from 'node:path';
import { findStaleJobs, JOB_FILE, RESULTS_DIR, readClaim, type TransportContext } from '@jw/core';
import { type Held, heldRecovered } from './held.js';
import type { Inbox } from './inbox.js';

/**
 * Whether `{ id }` alone can run a stale job: its expired claim keeps the request that
 * started it (core runs that again), or it has a job.json. A job whose steps came in
 * the request and whose claim was released on shutdown cannot; its request is
 * published again by the worker that gave it back.
 */
async function runnableFromId(jobDir: string): Promise<boolean> {
  if ((await readClaim(path.join(jobDir, RESULTS_DIR)))?.request) return true;
  return access(path.join(jobDir, JOB_FILE)).then(
    () => true,
    () => false,
  );
}

/** Jobs whose worker died (expired claim, or given back on shutdown) become deliveries of `{ id }`. */
export class Recovery {
  /** Recovered jobs handed to the worker and not settled yet. */
  readonly out = new Set<string>();
  /** Stale jobs a bare `{ id }` cannot run (already warned about). */
  readonly #unrunnable = new Set<string>();
  #scanning = false;

  constructor(
    readonly context: TransportContext,
    readonly inbox: Inbox<Held>,
    readonly stopping: () => boolean,
    readonly generation: () => number,
  ) {}

  async scan(): Promise<void> {
    if (this.#scanning || this.stopping()) return;
    this.#scanning = true;
    const { context } = this;
    const logger = context.logger;
    try {
      const ids = await findStaleJobs(context.jobsDir);
      const active = new Set(context.activeJobs());
      for (const id of ids) {
        if (this.stopping()) break;
        if (active.has(id) || this.out.has(id)) continue;
        if (this.inbox.some((h) => h.kind === 'recovered' && h.jobId === id)) continue;
        if (!(await runnableFromId(path.join(context.jobsDir, id)))) {
          if (!this.#unrunnable.has(id)) {
            this.#unrunnable.add(id);
            logger.warn(
              { jobId: id },
              'job given back without job.json or a claim holding its request; waiting for its request to be published again',
            );
          }
          continue;
        }
        logger.info({ jobId: id }, 'recovering a job whose worker died');
        this.inbox.push(heldRecovered(id, this.generation()));
      }
    } catch (error) {
      logger.warn({ err: error }, 'recovery scan failed');
    } finally {
      this.#scanning = false;
    }
  }
}
