import type { JobEvent, ResultMessage } from '@jw/core';

/** The request `submitJob` sends (SPEC 2); `traceparent` rides along for workers that read it. */
export interface SubmitRequest {
  id: string;
  env?: Record<string, string>;
  timeoutSeconds?: number;
  force?: boolean;
  traceparent?: string;
}

/** One worker as its heartbeat (or the backend) describes it. */
export interface WorkerStatus {
  workerId: string;
  /** `online` or `offline` (MQTT's retained last will, NATS's goodbye); the backend's workers are `online`. */
  status: string;
  /** `idle`, `busy`, `draining` or `offline` (SPEC 7). */
  state?: string;
  hostname?: string;
  pid?: number;
  transport?: string;
  version?: string;
  activeJobs?: string[];
  concurrency?: number;
  /** The host's 1, 5 and 15 minute load averages. */
  loadAverage?: number[];
  startedAt?: string;
  /** When the status was sent (or, for the HTTP backend, last heard of). */
  at?: string;
}

export interface CancelOutcome {
  /** The cancel went out. */
  sent: boolean;
  /** Whether a worker said it stopped the job: known only where the transport answers (NATS request-reply, the backend). */
  confirmed?: boolean;
  detail?: string;
}

export interface WorkersOptions {
  /** How long to listen for heartbeats that are not retained (NATS). Default 11 s (the NATS worker beats every 10 s). */
  listenMs?: number;
  signal?: AbortSignal;
}

/** A subscription to one job's result and progress, opened before its request is sent. */
export interface JobWatch {
  readonly result: Promise<ResultMessage>;
  /** Progress events; the stream ends after a final state or when the watch closes. */
  readonly events: EventStream<JobEvent>;
  close(): Promise<void>;
}

/** One way of reaching workers: a file queue, MQTT, NATS, the HTTP backend. */
export interface Channel {
  readonly kind: 'file' | 'mqtt' | 'nats' | 'http';
  /** The `via` URL with credentials hidden, for messages. */
  readonly label: string;
  watch(id: string, jobDir: string): Promise<JobWatch>;
  send(request: SubmitRequest): Promise<void>;
  cancel(id: string, reason?: string): Promise<CancelOutcome>;
  workers(options?: WorkersOptions): Promise<WorkerStatus[]>;
  close(): Promise<void>;
}

/**
 * A buffered event stream: every iterator sees every event from the first one on, so
 * a consumer that starts late misses nothing.
 */
export class EventStream<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  #waiters = new Set<() => void>();

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  get ended(): boolean {
    return this.#ended;
  }

  #wake(): void {
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let i = 0;
    for (;;) {
      while (i < this.#items.length) yield this.#items[i++]!;
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#waiters.add(resolve));
    }
  }
}

/** Resolves after `ms`, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
