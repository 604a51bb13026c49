import { readdir } from 'node:fs/promises';

/** The names in `dir`, none when it cannot be read (gone, or a blinking NFS). */
export const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

/** Resolves when `signal` aborts (at once if it has). */
export const whenAborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });

/** A scan that is skipped while the previous one still runs (a slow NFS must not pile them up). */
export function once(scan: () => Promise<void>): (() => Promise<void>) & { idle(): Promise<void> } {
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= scan().finally(() => {
      running = undefined;
    });
    return running;
  };
  return Object.assign(run, { idle: () => running?.catch(() => {}) ?? Promise.resolve() });
}

/** Timers of the periodic scans, cleared together on stop. */
export class Every {
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(private readonly onError: (error: unknown) => void) {}

  /** Runs each scan every `ms`; their failures are logged, never thrown. */
  add(ms: number, ...scans: (() => Promise<unknown>)[]): void {
    const timer = setInterval(() => {
      for (const scan of scans) void scan().catch(this.onError);
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  clear(): void {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
  }
}

/**
 * Writes of one file, one at a time, the newest winning: a write asked for while one
 * runs waits, and is dropped for a newer one asked for meanwhile. The file never goes
 * back to an older state, and a burst of events costs two writes, not one per event.
 * Each promise settles with its write, or with the newer one that replaced it.
 */
export class LatestWrite {
  #running = false;
  #next: { write: () => Promise<void>; done: Resolvers<void> } | undefined;

  write(write: () => Promise<void>): Promise<void> {
    if (!this.#running) return this.#start(write);
    if (this.#next) this.#next.write = write;
    else this.#next = { write, done: withResolvers() };
    return this.#next.done.promise;
  }

  #start(write: () => Promise<void>): Promise<void> {
    this.#running = true;
    return write().finally(() => {
      this.#running = false;
      const next = this.#next;
      this.#next = undefined;
      if (next) this.#start(next.write).then(next.done.resolve, next.done.reject);
    });
  }
}

interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason?: unknown) => void;
}

/** `Promise.withResolvers` (Node 22) for Node 20. */
function withResolvers<T>(): Resolvers<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
