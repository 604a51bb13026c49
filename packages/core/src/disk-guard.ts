import { statfs } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatBytes, parseByteSize } from './byte-size.js';
import { ErrorCode, JwError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';

/** The free space a worker needs on its workspaces filesystem to take work. */
export type FreeSpaceLimit = { bytes: number } | { percent: number };

export interface FreeSpace {
  /** Bytes an unprivileged writer may still use. */
  freeBytes: number;
  totalBytes: number;
}

/** Reads the free space of the filesystem holding `dir` (the seam tests replace). */
export type FreeSpaceReader = (dir: string) => Promise<FreeSpace>;

export const readFreeSpace: FreeSpaceReader = async (dir) => {
  const s = await statfs(dir);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
};

/** `500MiB`, `2G`, `1048576` or `5%`; `0` turns the guard off. */
export function parseFreeSpaceLimit(text: string): FreeSpaceLimit {
  const percent = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  if (!percent) return { bytes: parseByteSize(text) };
  const value = Number(percent[1]);
  if (value > 100)
    throw new JwError(ErrorCode.BAD_CONFIG, `"${text}" is more than the whole filesystem`);
  return { percent: value };
}

export function describeLimit(limit: FreeSpaceLimit): string {
  return 'percent' in limit ? `${limit.percent}%` : formatBytes(limit.bytes);
}

export interface DiskGuardOptions {
  /** The workspaces dir: its filesystem is the one watched. */
  dir: string;
  min: FreeSpaceLimit;
  read?: FreeSpaceReader;
  logger?: Logger;
}

/**
 * Says whether there is room to take a job: below the limit a worker takes no work
 * (and gives back what it was handed) rather than fail jobs half-staged. Logs once
 * when it trips and once when it clears.
 */
export class DiskGuard {
  readonly #o: DiskGuardOptions;
  readonly #read: FreeSpaceReader;
  readonly #logger: Logger;
  #holding: string | undefined;
  #checking: Promise<string | undefined> | undefined;

  constructor(options: DiskGuardOptions) {
    this.#o = options;
    this.#read = options.read ?? readFreeSpace;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Whether the limit is set at all (`0` and `0%` turn the guard off). */
  static enabled(min: FreeSpaceLimit | undefined): min is FreeSpaceLimit {
    return min !== undefined && ('percent' in min ? min.percent > 0 : min.bytes > 0);
  }

  /** Why no work is taken, as of the last check; undefined while there is room. */
  get holding(): string | undefined {
    return this.#holding;
  }

  /** Reads the free space now; resolves with the reason when below the limit. */
  check(): Promise<string | undefined> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  /** Checks every `intervalMs` until stopped; `onHold` is called on each check that holds. */
  watch(intervalMs: number, onHold: () => void): () => void {
    const timer = setInterval(() => {
      void this.check().then((holding) => {
        if (holding) onHold();
      });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Waits while the guard holds, checking every `intervalMs`: true once there is room, false when `signal` aborts. */
  async waitForRoom(intervalMs: number, signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      await sleep(intervalMs, undefined, { signal }).catch(() => {});
      if (signal.aborted) break;
      if (!(await this.check())) return true;
    }
    return false;
  }

  async #check(): Promise<string | undefined> {
    const { dir, min } = this.#o;
    let space: FreeSpace;
    try {
      space = await this.#read(dir);
    } catch (error) {
      // A dir that cannot be read is the workspaces check's to report; keep what we knew.
      this.#logger.debug({ err: error, dir }, 'free space not readable');
      return this.#holding;
    }
    const need = 'percent' in min ? (space.totalBytes * min.percent) / 100 : min.bytes;
    const was = this.#holding;
    if (space.freeBytes < need) {
      this.#holding = `disk guard: ${formatBytes(space.freeBytes)} free on the workspaces filesystem (${dir}), below the ${describeLimit(min)} to keep free`;
      if (!was)
        this.#logger.warn(
          { dir, freeBytes: space.freeBytes, minFreeBytes: Math.round(need) },
          `${this.#holding}; taking no work until there is room`,
        );
    } else {
      this.#holding = undefined;
      if (was)
        this.#logger.info(
          { dir, freeBytes: space.freeBytes, minFreeBytes: Math.round(need) },
          'disk guard cleared: taking work again',
        );
    }
    return this.#holding;
  }
}
