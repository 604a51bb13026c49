import { hostname } from 'node:os';
import type { TransportContext } from '@jw/core';
import type { Publisher } from './publisher.js';

export interface HeartbeatMessage {
  workerId: string;
  status: 'online' | 'offline';
  hostname: string;
  pid: number;
  version?: string;
  activeJobs: string[];
  at: string;
}

/** Worker status on `workers.{id}.status`, on its own timer so it keeps going while a job runs. */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly publisher: Publisher,
    private readonly subject: string,
    private readonly context: TransportContext,
    private readonly intervalMs: number,
    private readonly version: string | undefined,
  ) {}

  message(status: HeartbeatMessage['status']): HeartbeatMessage {
    return {
      workerId: this.context.workerId,
      status,
      hostname: hostname(),
      // The worker id is shared by competing instances; host and pid tell them apart.
      pid: process.pid,
      ...(this.version === undefined ? {} : { version: this.version }),
      activeJobs: status === 'online' ? this.context.activeJobs() : [],
      at: new Date().toISOString(),
    };
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
