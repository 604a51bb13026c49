import {
  type Delivery,
  ErrorCode,
  type JobEvent,
  JwError,
  type Logger,
  type Manifest,
  type ReleaseReason,
  type ResultMessage,
} from '@jw/core';
import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { deadLetterOf } from './dead-letter.js';
import type { Publisher } from './publisher.js';
import type { Subjects } from './subjects.js';

export interface DeliveryContext {
  nc: NatsConnection;
  publisher: Publisher;
  subjects: Subjects;
  workerId: string;
  stream: string;
  maxDeliver: number;
  workingIntervalMs: number;
  ackWaitMs: number;
  logger: Logger;
  onSettled(delivery: NatsDelivery): void;
}

const ACK = '+ACK';
const ACK_REQUEST_TIMEOUT_MS = 5_000;
const ACK_RETRY_MS = 500;

/**
 * One JetStream message held open while its job runs: in-progress acks on its own
 * timer from the moment it is fetched until it is settled, acked only after the
 * result is published, nak'd when given back, termed when it can never run.
 */
export class NatsDelivery implements Delivery {
  readonly body: Uint8Array;
  readonly label: string;
  private readonly keepAlive: NodeJS.Timeout;
  private settled = false;
  private lastWorking: number;

  constructor(
    readonly msg: JsMsg,
    private readonly ctx: DeliveryContext,
  ) {
    this.body = msg.data;
    this.label = `${ctx.stream}#${msg.seq} delivery ${msg.info.deliveryCount}`;
    // A plain interval, not tied to any job step: the ack wait can stay short whatever the job time-out.
    this.lastWorking = Date.now();
    this.keepAlive = setInterval(() => this.working(), ctx.workingIntervalMs);
  }

  /**
   * JsMsg.ackAck() can be tried only once; acking on the reply subject ourselves
   * lets a confirmation lost in a reconnect be asked for again (acks are idempotent).
   */
  private get ackSubject(): string {
    return (this.msg as unknown as { reply: string }).reply;
  }

  get deliveryCount(): number {
    return this.msg.info.deliveryCount;
  }

  private working(): void {
    const now = Date.now();
    const gap = now - this.lastWorking;
    this.lastWorking = now;
    // Something blocked the event loop; near the ack wait the server hands the job to another worker.
    if (gap > 2 * this.ctx.workingIntervalMs) {
      this.ctx.logger.warn(
        { delivery: this.label, gapMs: gap, ackWaitMs: this.ctx.ackWaitMs },
        'in-progress ack late: the event loop was blocked',
      );
    }
    try {
      this.msg.working();
    } catch (error) {
      this.ctx.logger.warn({ err: error, delivery: this.label }, 'in-progress ack failed');
    }
  }

  onEvent(event: JobEvent): void {
    this.ctx.publisher.publishLossy(this.ctx.subjects.progress(event.jobId), JSON.stringify(event));
  }

  async complete(
    result: ResultMessage,
    _manifest: Manifest | undefined,
    published?: () => Promise<void>,
  ): Promise<void> {
    this.settling('complete');
    try {
      // The request's stream sequence keeps a retried or replayed publish of the same result one stored message.
      const mode = await this.ctx.publisher.publish(
        this.ctx.subjects.result(result.id),
        JSON.stringify(result),
        {
          msgId: `jw-result:${this.ctx.stream}:${this.msg.seq}:${result.id}`,
        },
      );
      this.ctx.logger.debug({ jobId: result.id, mode, delivery: this.label }, 'result published');
      // The claim goes while the delivery is still held: acknowledged first, a kill in
      // between would leave a claim that nothing delivers again (Delivery.complete).
      await published?.();
      this.stopKeepAlive();
      await this.ackConfirmed();
    } finally {
      this.finish();
    }
  }

  async reject(error: JwError, result: ResultMessage | undefined): Promise<void> {
    this.settling('reject');
    try {
      if (result) {
        await this.ctx.publisher.publish(
          this.ctx.subjects.result(result.id),
          JSON.stringify(result),
          {
            msgId: `jw-result:${this.ctx.stream}:${this.msg.seq}:${result.id}`,
          },
        );
      }
      await this.deadLetter(error);
      this.stopKeepAlive();
      this.msg.term();
      await this.ctx.nc.flush();
    } finally {
      this.finish();
    }
  }

  async release(reason: ReleaseReason, delayMs: number): Promise<void> {
    this.settling('release');
    try {
      const exhausted = this.ctx.maxDeliver > 0 && this.deliveryCount >= this.ctx.maxDeliver;
      if (exhausted) {
        // JetStream never delivers it again, and would drop it silently: keep a record instead.
        await this.deadLetter(
          new JwError(
            ErrorCode.TRANSPORT_FAILED,
            `given back (${reason}) on delivery ${this.deliveryCount} of at most ${this.ctx.maxDeliver}`,
          ),
        );
        this.stopKeepAlive();
        this.msg.term();
      } else {
        this.stopKeepAlive();
        // A shutdown gives it back at once so that another worker takes it now.
        if (reason === 'shutdown' || delayMs <= 0) this.msg.nak();
        else this.msg.nak(Math.ceil(delayMs));
      }
      await this.ctx.nc.flush();
    } finally {
      this.finish();
    }
  }

  /** Gives back a message nobody asked for (a pull answered after its `next` gave up). */
  giveBack(): void {
    this.settled = true;
    this.stopKeepAlive();
    this.msg.nak();
  }

  private async deadLetter(error: JwError): Promise<void> {
    const letter = deadLetterOf(this.msg, error, {
      workerId: this.ctx.workerId,
      stream: this.ctx.stream,
      maxPayload: this.ctx.nc.info?.max_payload,
    });
    const mode = await this.ctx.publisher.publish(this.ctx.subjects.deadLetter, letter.data, {
      headers: letter.headers,
      msgId: `jw-dead:${this.ctx.stream}:${this.msg.seq}`,
    });
    this.ctx.logger.warn(
      {
        code: error.code,
        reason: error.message,
        delivery: this.label,
        subject: this.ctx.subjects.deadLetter,
        mode,
      },
      'request dead-lettered',
    );
  }

  /**
   * Acks and waits for the server to confirm, retrying through a reconnect. Gives
   * up after twice the ack wait: by then the message has been redelivered, and the
   * next worker finds the final result.json and republishes it.
   */
  private async ackConfirmed(): Promise<void> {
    const giveUpAt = Date.now() + 2 * Math.max(this.ctx.ackWaitMs, ACK_REQUEST_TIMEOUT_MS);
    for (;;) {
      try {
        await this.ctx.nc.request(this.ackSubject, ACK, { timeout: ACK_REQUEST_TIMEOUT_MS });
        return;
      } catch (error) {
        if (this.ctx.nc.isClosed() || Date.now() >= giveUpAt) {
          this.ctx.logger.warn({ err: error, delivery: this.label }, 'ack not confirmed');
          return;
        }
        this.ctx.logger.debug(
          { err: error, delivery: this.label },
          'ack not confirmed yet, retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, ACK_RETRY_MS));
      }
    }
  }

  private settling(how: string): void {
    if (this.settled) throw new Error(`delivery ${this.label} is already settled (${how})`);
    this.settled = true;
  }

  private stopKeepAlive(): void {
    clearInterval(this.keepAlive);
  }

  private finish(): void {
    this.stopKeepAlive();
    this.ctx.onSettled(this);
  }
}
