import { ErrorCode, JwError, type Logger } from '@jw/core';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import type { PublishMode, PublishModes } from './publish-modes.js';

export type { PublishMode } from './publish-modes.js';

export interface PublishOptions {
  headers?: MsgHdrs;
  /** JetStream de-duplication id, so a retried publish is stored once. */
  msgId?: string;
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

/**
 * Publishes messages that must arrive (results, dead letters): through JetStream
 * (stored, acknowledged by the server) when a stream captures the subject, else a
 * plain publish followed by a flush. Retries until it gets through or the
 * connection is closed for good.
 */
export class Publisher {
  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly modes: PublishModes,
    private readonly logger: Logger,
  ) {}

  async publish(
    subject: string,
    data: Uint8Array | string,
    options: PublishOptions = {},
  ): Promise<PublishMode> {
    let wait = RETRY_MIN_MS;
    for (let attempt = 1; ; attempt++) {
      if (this.nc.isClosed()) {
        throw new JwError(
          ErrorCode.TRANSPORT_FAILED,
          `cannot publish on ${subject}: connection closed`,
        );
      }
      try {
        const mode = await this.modes.modeOf(subject);
        if (mode === 'jetstream') {
          await this.js.publish(subject, data, {
            ...(options.headers ? { headers: options.headers } : {}),
            ...(options.msgId ? { msgID: options.msgId } : {}),
          });
        } else {
          this.nc.publish(
            subject,
            data,
            options.headers ? { headers: options.headers } : undefined,
          );
          await this.nc.flush();
        }
        return mode;
      } catch (error) {
        if (this.nc.isClosed()) {
          throw new JwError(
            ErrorCode.TRANSPORT_FAILED,
            `cannot publish on ${subject}: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
        // A stream may have gone or changed under us: the retry asks the server again.
        this.modes.forget(subject);
        this.logger.warn({ subject, attempt, err: error }, 'publish failed, retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(wait * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Fire and forget, for messages whose loss costs nothing (progress, heartbeats). */
  publishLossy(subject: string, data: string): void {
    try {
      this.nc.publish(subject, data);
    } catch (error) {
      this.logger.debug({ subject, err: error }, 'lossy publish dropped');
    }
  }
}
