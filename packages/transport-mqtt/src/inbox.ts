/**
 * Requests waiting for the worker to ask for one. `next()` takes the first item that
 * `preferred` picks, else the oldest, or waits; only one `take` is ever pending (the
 * Transport contract).
 */
export class Inbox<T> {
  readonly #items: T[] = [];
  #waiter: { resolve(item: T | null): void; reject(error: unknown): void } | undefined;
  #failure: unknown;

  constructor(readonly preferred: (item: T) => boolean = () => false) {}

  get size(): number {
    return this.#items.length;
  }

  /** True while a `take` is waiting: an arriving request goes straight to the worker. */
  get waiting(): boolean {
    return this.#waiter !== undefined;
  }

  push(item: T): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve(item);
    } else {
      this.#items.push(item);
    }
  }

  /** Removes and returns every queued item matching `predicate`. */
  drain(predicate: (item: T) => boolean = () => true): T[] {
    const taken: T[] = [];
    for (let i = this.#items.length - 1; i >= 0; i--) {
      if (predicate(this.#items[i]!)) taken.unshift(...this.#items.splice(i, 1));
    }
    return taken;
  }

  count(predicate: (item: T) => boolean): number {
    return this.#items.filter(predicate).length;
  }

  take(signal: AbortSignal): Promise<T | null> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#items.length > 0) {
      const first = Math.max(0, this.#items.findIndex(this.preferred));
      return Promise.resolve(this.#items.splice(first, 1)[0]!);
    }
    if (signal.aborted) return Promise.resolve(null);
    return new Promise<T | null>((resolve, reject) => {
      const onAbort = () => {
        this.#waiter = undefined;
        resolve(null);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = {
        resolve: (item) => {
          signal.removeEventListener('abort', onAbort);
          resolve(item);
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
    });
  }

  /** Ends the waiting `take` with `null` (stopping). */
  close(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve(null);
  }

  /** Every `take` from now on rejects with `error` (a fault that will not heal). */
  fail(error: unknown): void {
    this.#failure = error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }
}
