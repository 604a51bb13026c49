import type { Logger } from '@jw/core';
import type { AgentClient } from './agent-client.js';
import { type CancelWord, STOP_WORDS } from './status-words.js';

export interface JobMonitorOptions {
  jobId: string;
  workerId: string;
  client: AgentClient;
  logger: Logger;
  /** `STATUS_POLL_INTERVAL`; 0 turns status polls and `running` re-posts off. */
  intervalMs: number;
  /** The backend asked for the job to end; called on every poll that says so until the job ends. */
  onStopRequest(word: CancelWord): void;
}

/**
 * Watches one job on the backend while it runs: polls `GET /status/{job_id}`
 * and re-posts `running` on the same beat (SPEC 8), so the backend never takes
 * a live job for stale and a stop request is seen within one interval.
 */
export class JobMonitor {
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  private ticking = false;
  private reported = false;
  private stopped = false;
  private word: CancelWord | undefined;

  constructor(private readonly options: JobMonitorOptions) {}

  /** What the backend asked for, once it asked for the job to end. */
  get cancelWord(): CancelWord | undefined {
    return this.word;
  }

  start(): void {
    if (this.options.intervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    }
  }

  /** Posts `running` the first time; later ones come from the timer. */
  reportRunning(): void {
    if (this.reported || this.stopped) return;
    this.reported = true;
    this.postRunning();
  }

  /** Ends the watch and waits for calls in flight, so no `running` lands after the final status. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.inflight]);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    const { client, jobId, logger } = this.options;
    try {
      const status = await this.track(
        client.jobStatus(jobId).catch((error: unknown) => {
          logger.debug(
            { err: error instanceof Error ? error.message : error, jobId },
            'status poll failed',
          );
          return undefined;
        }),
      );
      if (this.stopped) return;
      const word = status === undefined ? undefined : STOP_WORDS[status as keyof typeof STOP_WORDS];
      if (word !== undefined && this.word === undefined) {
        this.word = word;
        logger.info({ jobId, backendStatus: status }, 'backend asked to end the job');
      }
      if (this.word !== undefined) {
        this.options.onStopRequest(this.word);
      } else if (this.reported) {
        this.postRunning();
      }
    } finally {
      this.ticking = false;
    }
  }

  private postRunning(): void {
    const { client, jobId, workerId, logger } = this.options;
    void this.track(
      client
        .postStatus({ job_id: jobId, status: 'running', worker_id: workerId })
        .catch((error: unknown) => {
          logger.warn(
            { err: error instanceof Error ? error.message : error, jobId },
            'posting running failed',
          );
        }),
    );
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    void promise.finally(() => this.inflight.delete(promise));
    return promise;
  }
}
