import { type FileHandle, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@jw/core';

const CHUNK_BYTES = 64 * 1024;

/**
 * The job's combined log (`{job dir}/logs/{id}.log`, SPEC 8): the bytes of each
 * step log appended as they are written. It polls the step log's size, because
 * change events are unreliable on NFS, and copies only the new bytes through one
 * small buffer, so a large log is never held in memory.
 */
export class CombinedLog {
  private out: FileHandle | undefined;
  private source: { file: string; offset: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly buffer = Buffer.alloc(CHUNK_BYTES);
  private failed = false;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly logger: Logger,
    private readonly intervalMs = 250,
  ) {}

  /** Follows a step's log from its start; what is left of the previous step's log is copied first. */
  follow(stepLogFile: string): Promise<void> {
    return this.serial(async () => {
      // A late event must not reopen (and so truncate) a log that is complete.
      if (this.closed) return;
      await this.copyNew();
      if (!this.out) {
        await mkdir(path.dirname(this.file), { recursive: true });
        // A new attempt replaces the log of an earlier one, as step logs are replaced.
        this.out = await open(this.file, 'w');
      }
      this.source = { file: stepLogFile, offset: 0 };
      this.timer ??= setInterval(() => void this.serial(() => this.copyNew()), this.intervalMs);
    });
  }

  /** Copies what is left and closes the file. */
  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    return this.serial(async () => {
      await this.copyNew();
      await this.out?.close();
      this.out = undefined;
      this.source = undefined;
    });
  }

  private async copyNew(): Promise<void> {
    const { source, out } = this;
    if (!source || !out || this.failed) return;
    let input: FileHandle;
    try {
      input = await open(source.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      for (;;) {
        const { bytesRead } = await input.read(this.buffer, 0, CHUNK_BYTES, source.offset);
        if (bytesRead === 0) break;
        await out.write(this.buffer, 0, bytesRead);
        source.offset += bytesRead;
      }
    } finally {
      await input.close();
    }
  }

  private serial(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task).catch((error) => {
      // The combined log is a convenience copy: a failure is logged once and never fails the job.
      if (!this.failed) this.logger.warn({ err: error, file: this.file }, 'combined log stopped');
      this.failed = true;
    });
    this.queue = run;
    return run;
  }
}
