import { type TransportContext, type WorkerHeartbeat, workerHeartbeat } from '@jw/core';
import type { Publisher } from './publisher.js';

/** The message on `workers.{id}.status`: the heartbeat of `@jw/core`. */
export type HeartbeatMessage = WorkerHeartbeat;

/** Worker status on `workers.{id}.status`, on its own timer so it keeps going while a job runs. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date();

  constructor(
    private readonly publisher: Publisher,
    private readonly subject: string,
    private readonly context: TransportContext,
    private readonly intervalMs: number,
    private readonly version: string | undefined,
  ) {}

  message(status: HeartbeatMessage['status']): HeartbeatMessage {
    return workerHeartbeat({
      context: this.context,
      transport: 'nats',
      startedAt: this.startedAt,
      offline: status === 'offline',
      version: this.version,
    });
  }

  start(): void {
    if (this.intervalMs <= 0) return;
    this.beat();
    this.timer = setInterval(() => this.beat(), this.intervalMs);
  }

  private beat(): void {
    this.publisher.publishLossy(this.subject, JSON.stringify(this.message('online')));
  }

  /** Stops the timer and says goodbye; the caller flushes. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.publisher.publishLossy(this.subject, JSON.stringify(this.message('offline')));
  }
}
