import { createWriteStream, type WriteStream } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';

export function stepLogName(index: number): string {
  return `step_${index}.log`;
}

/**
 * The log of one step, `results/step_N.log`, created (truncated) before the step
 * starts. A shell step gets the file descriptor itself as its stdout and stderr,
 * so the kernel interleaves both streams as produced and the worker holds none of
 * the output in memory; the file stays open as long as any process of the step
 * holds it, however early one stream closes.
 */
export class StepLog {
  readonly file: string;
  readonly #handle: import('node:fs/promises').FileHandle;

  private constructor(file: string, handle: import('node:fs/promises').FileHandle) {
    this.file = file;
    this.#handle = handle;
  }

  static async create(resultsDir: string, index: number): Promise<StepLog> {
    const file = path.join(resultsDir, stepLogName(index));
    return new StepLog(file, await open(file, 'w'));
  }

  get fd(): number {
    return this.#handle.fd;
  }

  /** A stream onto the same file, for in-process handlers (`uses` steps) and worker notes. */
  stream(): WriteStream {
    return createWriteStream(this.file, { flags: 'a' });
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => {});
  }
}

/** Step logs of an earlier attempt are replaced, not appended to (SPEC 4). */
export async function removeStepLogs(resultsDir: string): Promise<void> {
  const names = await readdir(resultsDir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => /^step_\d+\.log$/.test(n))
      .map((n) => unlink(path.join(resultsDir, n)).catch(() => {})),
  );
}
