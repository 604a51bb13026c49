import path from 'node:path';
import { leaseRemaining, readClaim, type TransportContext } from '@jw/core';
import { once } from './scans.js';

interface Entry {
  id: string | undefined;
  timer: NodeJS.Timeout;
  run: () => Promise<void>;
}

/**
 * Requests of jobs another holder runs, kept in `processing/` until that holder's lease
 * is over (so no worker spins on them), then given back to `pending/`. Keyed by the
 * name they were taken under.
 */
export class Postponed {
  readonly #entries = new Map<string, Entry>();
  /** Gives back every entry whose job is free again; run from the rescan. */
  readonly releaseAllFreed = once(() => this.#releaseFreed());

  constructor(private readonly context: () => TransportContext) {}

  get size(): number {
    return this.#entries.size;
  }

  has(taken: string): boolean {
    return this.#entries.has(taken);
  }

  /** Gives `taken` (request file `name`) back by `run` after `delayMs`, or once its job `id` is free. */
  add(
    taken: string,
    name: string,
    id: string | undefined,
    delayMs: number,
    run: () => Promise<void>,
  ): void {
    const timer = setTimeout(
      () =>
        void run().catch((error) =>
          this.context().logger.warn(
            { err: error, file: name },
            'could not give back a postponed request',
          ),
        ),
      delayMs,
    );
    this.#entries.set(taken, { id, timer, run });
  }

  /** Forgets `taken` (its give-back is running). */
  delete(taken: string): void {
    this.#entries.delete(taken);
  }

  /**
   * A job of this worker just ended: requests of it postponed here need not wait for the
   * lease, nor for the next rescan. Its claim goes once the result is delivered, a moment
   * after `complete()`, so look a few times.
   */
  async releaseWhenFree(id: string): Promise<void> {
    for (const delayMs of [0, 20, 50, 100, 200, 500]) {
      await new Promise((r) => setTimeout(r, delayMs));
      await this.#releaseFreed(id);
      if (![...this.#entries.values()].some((entry) => entry.id === id)) return;
    }
  }

  /** Stopping: every entry is given back now. */
  async releaseAll(): Promise<void> {
    for (const { timer, run } of this.#entries.values()) {
      clearTimeout(timer);
      await run();
    }
  }

  /** A postponed request whose job is free again (its holder ended or died) is given back now. */
  async #releaseFreed(onlyId?: string): Promise<void> {
    for (const [taken, entry] of this.#entries) {
      if (onlyId !== undefined && entry.id !== onlyId) continue;
      const claim = entry.id
        ? await readClaim(path.join(this.context().jobsDir, entry.id, 'results'))
        : undefined;
      if (claim && (await leaseRemaining(claim)) > 0) continue;
      if (this.#entries.get(taken) !== entry) continue;
      clearTimeout(entry.timer);
      await entry.run();
    }
  }
}
