import type { WriteStream } from 'node:fs';
import { type FileHandle, open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { NO_FOLLOW, refuseIfLink } from './results-dir.js';

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
  readonly #handle: FileHandle;

  private constructor(file: string, handle: FileHandle) {
    this.file = file;
    this.#handle = handle;
  }

  /** Throws BAD_JOB when a link stands in the log's place: it is never written through. */
  static async create(resultsDir: string, index: number): Promise<StepLog> {
    const file = path.join(resultsDir, stepLogName(index));
    const handle = await open(file, NO_FOLLOW.write, 0o666).catch((error) =>
      refuseIfLink(file, stepLogName(index), error),
    );
    return new StepLog(file, handle);
  }

  get fd(): number {
    return this.#handle.fd;
  }

  /** A stream onto the same file, for in-process handlers (`uses` steps) and worker notes. */
  async stream(): Promise<WriteStream> {
    const handle = await open(this.file, NO_FOLLOW.append).catch((error) =>
      refuseIfLink(this.file, path.basename(this.file), error),
    );
    return handle.createWriteStream();
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
