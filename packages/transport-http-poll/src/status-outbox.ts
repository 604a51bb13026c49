import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Logger, writeFileAtomic } from '@jw/core';
import { AgentCallError, type AgentClient } from './agent-client.js';
import { Backoff } from './backoff.js';
import type { StatusReport } from './status-words.js';

/** Answers by which the backend says it will never take this report; retrying cannot help. */
const REFUSED = new Set([400, 404, 409, 410, 422]);

export interface StatusOutboxOptions {
  /** Where undelivered final statuses wait, one file per job; survives a restart. */
  dir: string;
  client: AgentClient;
  logger: Logger;
  retryInitialMs: number;
  retryMaxMs: number;
}

/**
 * Final statuses on their way to the backend. Each is written to disk before it
 * is sent and removed once the backend took it, so a backend that is down when a
 * job ends, or an agent restarted meanwhile, loses nothing.
 */
export class StatusOutbox {
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private paused = false;

  constructor(private readonly options: StatusOutboxOptions) {
    this.backoff = new Backoff({ initialMs: options.retryInitialMs, maxMs: options.retryMaxMs });
  }

  /**
   * Creates the folder, removes what a killed run left half-written, and starts delivering
   * what it left; with `paused`, nothing is sent before `resume()`.
   */
  async open(options: { paused?: boolean } = {}): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    await removeTempFiles(this.options.dir, this.options.logger);
    this.paused = options.paused === true;
    if (!this.paused) await this.resume();
  }

  /**
   * Starts delivering the reports kept on disk. The agent first settles its in-flight
   * notes against them: a report delivered meanwhile would look never sent, and be sent
   * again from the job's result.json.
   */
  async resume(): Promise<void> {
    this.paused = false;
    const left = await this.stored();
    if (left.length > 0) {
      this.options.logger.info(
        { count: left.length },
        'delivering final statuses kept from an earlier run',
      );
      this.schedule(0);
    }
  }

  /**
   * Stores the report, tries it once; on failure it stays stored and is retried.
   * Resolves true once the report is safe: taken by the backend, or stored for a
   * retry that survives a restart; `safe` is called as soon as it is. Never throws.
   */
  async send(report: StatusReport, safe?: () => Promise<void>): Promise<boolean> {
    return this.serial(async () => {
      const stored = await this.store(report);
      // From here the stored report is the record: `safe` (the in-flight note goes) runs
      // before the send, so a kill after the backend took it leaves nothing to send again.
      if (stored) await safe?.();
      if (await this.deliver(report)) {
        if (!stored) await safe?.();
        return true;
      }
      if (!this.closed) this.schedule(this.backoff.next());
      return stored;
    });
  }

  /** Stores the report and leaves sending it to the retry timer (for reports found at start). */
  async keep(report: StatusReport): Promise<boolean> {
    const stored = await this.serial(() => this.store(report));
    this.schedule(0);
    return stored;
  }

  /** Whether a report for this job waits on disk. */
  async has(jobId: string): Promise<boolean> {
    return readFile(this.fileOf(jobId)).then(
      () => true,
      () => false,
    );
  }

  private async store(report: StatusReport): Promise<boolean> {
    try {
      await writeFileAtomic(this.fileOf(report.job_id), `${JSON.stringify(report)}\n`);
      return true;
    } catch (error) {
      // The store is a safety net; a full disk must not keep the status from the backend.
      this.options.logger.error(
        { err: error, jobId: report.job_id },
        'could not store final status',
      );
      return false;
    }
  }

  /** One pass over every stored report; resolves with how many are still undelivered. */
  async flush(): Promise<number> {
    return this.serial(async () => {
      let left = 0;
      for (const report of await this.stored()) {
        if (!(await this.deliver(report))) left++;
      }
      return left;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.queue.catch(() => {});
  }

  /** The reports waiting on disk. */
  async stored(): Promise<StatusReport[]> {
    const names = (await readdir(this.options.dir).catch(() => [] as string[])).filter((n) =>
      n.endsWith('.json'),
    );
    const reports: StatusReport[] = [];
    for (const name of names.sort()) {
      try {
        reports.push(JSON.parse(await readFile(path.join(this.options.dir, name), 'utf8')));
      } catch (error) {
        this.options.logger.warn({ err: error, file: name }, 'skipping unreadable stored status');
      }
    }
    return reports;
  }

  private async deliver(report: StatusReport): Promise<boolean> {
    const { logger, client } = this.options;
    try {
      await client.postStatus(report);
    } catch (error) {
      if (
        error instanceof AgentCallError &&
        error.status !== undefined &&
        REFUSED.has(error.status)
      ) {
        logger.error({ err: error, report }, 'backend refused the final status; dropping it');
      } else {
        logger.warn(
          {
            err: error instanceof Error ? error.message : error,
            jobId: report.job_id,
            status: report.status,
          },
          'final status not delivered; kept for a retry',
        );
        return false;
      }
    }
    this.backoff.reset();
    await unlink(this.fileOf(report.job_id)).catch(() => {});
    logger.info({ jobId: report.job_id, status: report.status }, 'final status delivered');
    return true;
  }

  private schedule(ms: number): void {
    if (this.closed || this.paused || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().then((left) => {
        if (left > 0) this.schedule(this.backoff.next());
      });
    }, ms);
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => {});
    return run;
  }

  private fileOf(jobId: string): string {
    return path.join(this.options.dir, `${fileNameOf(jobId)}.json`);
  }
}

/** base64url keeps any id (even one the backend sent with a slash) one safe file name. */
export function fileNameOf(jobId: string): string {
  return Buffer.from(jobId).toString('base64url');
}

/**
 * Removes the temporary files of atomic writes (`.{name}.{hex}.tmp`) that a run
 * killed mid-write left behind. The state dir is one agent's own (per worker id)
 * and its writes are serial, so at start no write of ours is in flight.
 */
export async function removeTempFiles(dir: string, logger: Logger): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const temps = names.filter((n) => n.startsWith('.') && n.endsWith('.tmp'));
  for (const name of temps) await unlink(path.join(dir, name)).catch(() => {});
  if (temps.length > 0) {
    logger.info({ count: temps.length, dir }, 'removed temporary files of an interrupted run');
  }
}
