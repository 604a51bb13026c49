import { readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Logger, writeFileAtomic } from '@jw/core';
import { fileNameOf } from './status-outbox.js';

const SUFFIX = '.active';

/** What the agent notes about a job it took, until the job's final status is safe. */
export interface InFlightRecord {
  job_id: string;
  /** `{shared dir}/jobs/{job_id}`, where the job's `results/result.json` is. */
  job_dir: string;
  received_at: string;
}

/**
 * The jobs this agent has taken and not yet settled, one small file each in the
 * state dir. A job that ended just before the agent was killed (its final
 * `result.json` written, its status not yet in the outbox) is found here at
 * the next start, so its final status still reaches the backend.
 */
export class InFlight {
  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  async add(jobId: string, jobDir: string): Promise<void> {
    const record: InFlightRecord = {
      job_id: jobId,
      job_dir: jobDir,
      received_at: new Date().toISOString(),
    };
    try {
      await writeFileAtomic(this.fileOf(jobId), `${JSON.stringify(record)}\n`);
    } catch (error) {
      // A safety net only: the job still runs and reports as usual.
      this.logger.warn({ err: error, jobId }, 'could not note the job in the state dir');
    }
  }

  async remove(jobId: string): Promise<void> {
    await unlink(this.fileOf(jobId)).catch(() => {});
  }

  /** Records an earlier run left; unreadable ones are removed. */
  async left(): Promise<InFlightRecord[]> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter(
      (n) => !n.startsWith('.') && n.endsWith(SUFFIX),
    );
    const records: InFlightRecord[] = [];
    for (const name of names.sort()) {
      const file = path.join(this.dir, name);
      try {
        const record = JSON.parse(await readFile(file, 'utf8')) as InFlightRecord;
        if (typeof record.job_id !== 'string' || typeof record.job_dir !== 'string') {
          throw new Error('not an in-flight record');
        }
        records.push(record);
      } catch (error) {
        this.logger.warn({ err: error, file: name }, 'removing an unreadable in-flight record');
        await unlink(file).catch(() => {});
      }
    }
    return records;
  }

  private fileOf(jobId: string): string {
    return path.join(this.dir, `${fileNameOf(jobId)}${SUFFIX}`);
  }
}
