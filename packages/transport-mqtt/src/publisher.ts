import { isValidJobId, type JobEvent, type ResultMessage, type TransportContext } from '@jw/core';
import type { Session } from './session.js';
import { statusMessage } from './status.js';
import { within } from './within.js';

/** Everything the worker sends: results, progress events, status, dead letters, give-backs. */
export class Publisher {
  readonly #pending = new Set<Promise<unknown>>();
  readonly #statusTopic: string;
  #stopped = false;

  constructor(
    readonly session: Session,
    readonly context: TransportContext,
    readonly startedAt: Date,
  ) {
    this.#statusTopic = `${session.options.topics.workers}/${context.workerId}/status`;
  }

  /** Keeps `promise` among those `settled()` waits for. */
  track<T>(promise: Promise<T>): void {
    this.#pending.add(promise);
    void promise.finally(() => this.#pending.delete(promise));
  }

  /** Waits (at most `ms`) for every publish still in flight. */
  settled(ms: number): Promise<boolean> {
    return within(Promise.allSettled([...this.#pending]), ms);
  }

  /**
   * QoS 1 publish that resolves on the broker's PUBACK. While the broker is away mqtt.js
   * keeps the message and sends it after reconnecting; it rejects only when the
   * transport gives up.
   */
  publish(topic: string, payload: string | Buffer, retain: boolean): Promise<void> {
    const failure = this.session.failure;
    if (failure) return Promise.reject(failure);
    // An empty retained message would delete the retained one instead of publishing.
    if (retain && payload.length === 0)
      return Promise.reject(new Error(`refusing to publish an empty retained message on ${topic}`));
    const sent = this.session.client.publishAsync(topic, payload, { qos: 1, retain });
    const done = Promise.race([sent, this.session.failed]).then(() => undefined);
    this.track(done.catch(() => {}));
    return done;
  }

  result(result: ResultMessage): Promise<void> {
    return this.publish(
      `${this.session.options.topics.results}/${result.id}`,
      JSON.stringify(result),
      false,
    );
  }

  /** Not awaited by the job: a slow or absent broker must not hold it up. */
  progress(event: JobEvent): void {
    if (!isValidJobId(event.jobId)) return;
    this.track(
      this.publish(
        `${this.session.options.topics.progress}/${event.jobId}`,
        JSON.stringify(event),
        false,
      ).catch((error) =>
        this.session.logger.debug(
          { err: error, jobId: event.jobId },
          'progress event not published',
        ),
      ),
    );
  }

  /** Refreshes the retained status; while disconnected nothing is queued (it is sent on reconnect). */
  online(): void {
    if (this.#stopped || this.session.failure || !this.session.connected) return;
    this.track(
      this.publish(
        this.#statusTopic,
        statusMessage(this.context, 'online', this.startedAt),
        true,
      ).catch((error) => this.session.logger.debug({ err: error }, 'status not published')),
    );
  }

  /** The goodbye status; no `online` is published after it. */
  offline(): Promise<void> {
    this.#stopped = true;
    return this.publish(
      this.#statusTopic,
      statusMessage(this.context, 'offline', this.startedAt),
      true,
    );
  }

  /** Stopping: no status refresh from now on. */
  stop(): void {
    this.#stopped = true;
  }
}
