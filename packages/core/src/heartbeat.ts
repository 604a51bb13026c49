import os from 'node:os';
import type { TransportContext } from './transport.js';

/** What a worker is doing, as its heartbeat says. */
export type WorkerState = 'idle' | 'busy' | 'draining' | 'offline';

/**
 * A worker's heartbeat, the same on every transport (SPEC 7): MQTT's retained
 * `workers/{id}/status`, NATS `workers.{id}.status`, the HTTP heartbeat's `info`,
 * the file queue's `workers/{id}.json`.
 */
export interface WorkerHeartbeat {
  workerId: string;
  /** `online` while it runs; `offline` after a clean stop (or MQTT's last will). */
  status: 'online' | 'offline';
  /** `draining`: told to stop (or SIGUSR1), finishing what runs, taking nothing new. */
  state: WorkerState;
  hostname: string;
  /** Instances may share a worker id; host and pid tell them apart. */
  pid: number;
  /** The worker's version, when known. */
  version?: string;
  /** `Transport.name`: `mqtt`, `nats`, `http-poll`, `file`. */
  transport: string;
  /** Ids of the jobs running now (none once offline). */
  activeJobs: string[];
  /** Jobs it runs at once at most. */
  concurrency: number;
  /** The host's 1, 5 and 15 minute load averages. */
  loadAverage: number[];
  startedAt: string;
  /** When this heartbeat was made. */
  at: string;
}

export interface HeartbeatInput {
  context: TransportContext;
  /** `Transport.name`. */
  transport: string;
  startedAt: Date;
  /** The goodbye (a clean stop, a last will). */
  offline?: boolean;
  /** The worker's version; default `context.version`. */
  version?: string | undefined;
  /** A drain the transport itself was told of (the HTTP agent's), besides the worker stopping. */
  draining?: boolean;
  /** Jobs the transport handed out that the worker does not run yet. */
  activeJobs?: readonly string[];
}

/** Builds the heartbeat every transport sends. */
export function workerHeartbeat(input: HeartbeatInput): WorkerHeartbeat {
  const { context } = input;
  const offline = input.offline === true;
  const activeJobs = offline
    ? []
    : [...new Set([...(input.activeJobs ?? []), ...context.activeJobs()])];
  const version = input.version ?? context.version;
  const state: WorkerState = offline
    ? 'offline'
    : input.draining || context.signal.aborted
      ? 'draining'
      : activeJobs.length > 0
        ? 'busy'
        : 'idle';
  return {
    workerId: context.workerId,
    status: offline ? 'offline' : 'online',
    state,
    hostname: os.hostname(),
    pid: process.pid,
    ...(version === undefined ? {} : { version }),
    transport: input.transport,
    activeJobs,
    concurrency: context.concurrency,
    loadAverage: os.loadavg().map((load) => Math.round(load * 100) / 100),
    startedAt: input.startedAt.toISOString(),
    at: new Date().toISOString(),
  };
}
