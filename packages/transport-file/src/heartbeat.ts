import path from 'node:path';
import { type TransportContext, workerHeartbeat } from '@jw/core';
import { writeQueueFile } from './queue-files.js';

/** How long a beat waits for others to join it (the file's readers poll in seconds). */
const BEAT_GATHER_MS = 25;

/** `workers/{id}.json`; an id that is not a plain file name is escaped. */
export function workerFileName(workerId: string): string {
  return `${encodeURIComponent(workerId).replace(/^\./, '%2E')}.json`;
}

/**
 * The file queue's heartbeat: `workers/{id}.json` in the queue dir, the heartbeat of
 * `@jw/core` rewritten (temp file and rename, so a reader never sees half) every
 * `intervalMs` and after each job, and left saying `offline` after a clean stop. A
 * worker killed outright leaves its last `online` beat: its `at` tells how old it is.
 */
export class WorkerFile {
  readonly file: string;
  readonly #startedAt = new Date();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #gathering: NodeJS.Timeout | undefined;

  constructor(
    workersDir: string,
    private readonly context: TransportContext,
    private readonly intervalMs: number,
  ) {
    this.file = path.join(workersDir, workerFileName(context.workerId));
  }

  async start(): Promise<void> {
    if (this.intervalMs <= 0) return;
    await this.#write(false);
    this.#timer = setInterval(() => this.#beatNow(), this.intervalMs);
    this.#timer.unref();
  }

  /**
   * Rewrites the file soon (a job started or ended): beats within `BEAT_GATHER_MS` make
   * one write, so a short job's start and end are one write, not two competing with the
   * job for the drive. One write at a time, the last one wins.
   */
  beat(): void {
    if (this.#stopped || this.#timer === undefined || this.#gathering) return;
    this.#gathering = setTimeout(() => {
      this.#gathering = undefined;
      this.#beatNow();
    }, BEAT_GATHER_MS);
    this.#gathering.unref();
  }

  #beatNow(): void {
    if (this.#stopped || this.#timer === undefined) return;
    if (this.#writing) {
      this.#again = true;
      return;
    }
    this.#writing = this.#write(false)
      .catch((error) => this.context.logger.warn({ err: error }, 'heartbeat file not written'))
      .finally(() => {
        this.#writing = undefined;
        if (this.#again) {
          this.#again = false;
          this.#beatNow();
        }
      });
  }

  /** Says `offline`; no `online` is written after it. */
  async stop(): Promise<void> {
    if (this.#stopped || this.#timer === undefined) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#gathering);
    await this.#writing;
    await this.#write(true);
  }

  #write(offline: boolean): Promise<void> {
    const beat = workerHeartbeat({
      context: this.context,
      transport: 'file',
      startedAt: this.#startedAt,
      offline,
    });
    return writeQueueFile(this.file, `${JSON.stringify(beat, null, 2)}\n`);
  }
}
