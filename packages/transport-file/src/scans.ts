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
