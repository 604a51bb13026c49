import type { Logger } from '@jw/core';
import type { AgentClient } from './agent-client.js';

export interface HeartbeatOptions {
  workerId: string;
  client: AgentClient;
  logger: Logger;
  /** `WORKER_HEARTBEAT_INTERVAL`; 0 turns the timer off. */
  intervalMs: number;
  /** The `info` object of each beat, built when it is sent. */
  info(): Record<string, unknown>;
}

/**
 * Heartbeats on their own timer (SPEC 8), also while jobs run. A beat that
 * fails is logged and the next one goes out on time; one slow answer never
 * stacks calls.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;
  private failing = false;

  constructor(private readonly options: HeartbeatOptions) {}

  start(): void {
    if (this.options.intervalMs <= 0) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
  }

  /** Sends one beat now (after a job ends, so the backend sees the last status at once). */
  beat(): Promise<void> {
    if (this.stopped || this.options.intervalMs <= 0) return Promise.resolve();
    if (this.inflight) return this.inflight;
    const { client, workerId, logger } = this.options;
    this.inflight = client
      .heartbeat(workerId, this.options.info())
      .then(() => {
        if (this.failing) logger.info('heartbeats delivered again');
        this.failing = false;
      })
      .catch((error: unknown) => {
        // One warning per outage, not one per beat.
        const log = this.failing ? logger.debug : logger.warn;
        log.call(
          logger,
          { err: error instanceof Error ? error.message : error },
          'heartbeat failed',
        );
        this.failing = true;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.inflight;
  }
}
