import { ErrorCode, JwError, type Logger } from '@jw/core';
import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import { createClient, installBackoff } from './connection.js';
import type { ResolvedOptions } from './options.js';

/** Codes of a refused CONNACK that retrying will not fix (MQTT 5 and 3.1.1). */
const REFUSED_FOR_GOOD = new Set([4, 5, 133, 134, 135, 138, 140]);
/** TLS verification failures: a wrong CA or host, not a broker that is down. */
const TLS_FOR_GOOD = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;

/** mqtt.js options of the worker's connection (SPEC 7: fixed client id, last will). */
export function clientOptions(
  o: ResolvedOptions,
  input: { clientId: string; concurrency: number; will: { topic: string; payload: Buffer } },
): IClientOptions {
  return {
    clientId: input.clientId,
    clean: o.clean,
    protocolVersion: o.protocolVersion,
    keepalive: o.keepaliveSeconds,
    connectTimeout: 10_000,
    resubscribe: true,
    ...(o.username === undefined ? {} : { username: o.username }),
    ...(o.password === undefined ? {} : { password: o.password }),
    ...(o.protocolVersion === 5
      ? {
          properties: {
            // Without an expiry an MQTT 5 session ends with the connection, clean flag or not.
            sessionExpiryInterval: o.clean ? 0 : o.sessionExpirySeconds,
            // The broker sends no more unacknowledged requests than the worker can run.
            receiveMaximum: Math.max(1, input.concurrency),
          },
        }
      : {}),
    will: { ...input.will, qos: 1, retain: true },
  };
}

export interface SessionHooks {
  /**
   * A CONNACK accepted a connection: called before mqtt.js handles anything else of it
   * (a resumed session's re-sent requests come after), and before `onConnect`.
   */
  onConnack(connack: IConnackPacket): void;
  /** A connection is up; `wasDown` after a reconnect (not the first connect). */
  onConnect(connack: IConnackPacket, wasDown: boolean): void;
  /** The transport gives up for good (broker away too long). */
  onFail(error: JwError): void;
}

/**
 * The broker connection and its generations: each CONNACK starts a new one, and a
 * PUBACK is only sent on the connection that delivered the message. Also tracks how
 * long the broker has been away, and fails for good after `giveUpAfterMs`.
 */
export class Session {
  readonly client: MqttClient;
  #generation = 0;
  #sessionStart = 0;
  #wasDown = false;
  #disconnectedSince: number | undefined;
  #failure: JwError | undefined;
  /** Rejects once, when the transport gives up: every publish still waiting fails with it. */
  readonly failed: Promise<never>;
  #rejectFailed: (error: JwError) => void = () => {};
  #quiet = false;

  constructor(
    readonly options: ResolvedOptions,
    clientOptions: IClientOptions,
    readonly logger: Logger,
    readonly hooks: SessionHooks,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.#rejectFailed = reject;
    });
    this.failed.catch(() => {});
    const client = createClient(options, clientOptions);
    this.client = client;
    // mqtt.js emits 'connect' on a resumed session only after flushing its outgoing
    // store, when the re-sent requests of the new connection have long arrived; the
    // CONNACK packet itself is seen here before any of them.
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack') this.#onConnack(packet as IConnackPacket);
    });
    client.on('connect', (connack) => this.hooks.onConnect(connack, this.#wasDown));
    client.on('close', () => {
      this.#disconnectedSince ??= Date.now();
    });
    client.on('offline', () => {
      if (!this.#quiet) logger.warn({ url: options.url }, 'MQTT broker unreachable; reconnecting');
    });
    installBackoff(client, options.reconnectMinMs, options.reconnectMaxMs);
  }

  get generation(): number {
    return this.#generation;
  }

  /** The generation whose CONNACK began the broker session we have now (no session present). */
  get sessionStart(): number {
    return this.#sessionStart;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  get failure(): JwError | undefined {
    return this.#failure;
  }

  /** No more warnings about an unreachable broker (stopping). */
  quiet(): void {
    this.#quiet = true;
  }

  /** The first connection: rejects on a refusal retrying cannot fix, after `giveUpAfterMs`, or on `signal`. */
  connect(signal: AbortSignal | undefined): Promise<void> {
    const o = this.options;
    const client = this.client;
    return new Promise<void>((resolve, reject) => {
      const fail = (error: JwError) => {
        cleanup();
        client.end(true);
        reject(error);
      };
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (error: Error & { code?: string | number }) => {
        if (typeof error.code === 'number' && REFUSED_FOR_GOOD.has(error.code)) {
          fail(
            new JwError(
              ErrorCode.BAD_CONFIG,
              `MQTT broker refused the connection: ${error.message}`,
              { cause: error },
            ),
          );
        } else if (typeof error.code === 'string' && TLS_FOR_GOOD.test(error.code)) {
          fail(
            new JwError(ErrorCode.BAD_CONFIG, `MQTT TLS verification failed: ${error.message}`, {
              cause: error,
            }),
          );
        } else {
          this.logger.warn({ err: error, url: o.url }, 'MQTT connection failed; retrying');
        }
      };
      const timer =
        o.giveUpAfterMs > 0
          ? setTimeout(
              () =>
                fail(
                  new JwError(
                    ErrorCode.TRANSPORT_FAILED,
                    `no MQTT broker at ${o.url} within ${o.giveUpAfterMs} ms`,
                  ),
                ),
              o.giveUpAfterMs,
            )
          : undefined;
      // The worker was told to stop before the broker ever answered.
      const onStop = () =>
        fail(new JwError(ErrorCode.TRANSPORT_FAILED, 'stopped before connecting'));
      if (signal?.aborted) queueMicrotask(onStop);
      else signal?.addEventListener('abort', onStop, { once: true });
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onStop);
        client.off('connect', onConnect);
        client.off('error', onError);
        client.on('error', (error) => this.logger.warn({ err: error }, 'MQTT client error'));
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.connect();
    });
  }

  #onConnack(connack: IConnackPacket): void {
    const code = this.options.protocolVersion === 5 ? connack.reasonCode : connack.returnCode;
    if ((code ?? 0) !== 0) return;
    this.#generation++;
    if (!connack.sessionPresent) this.#sessionStart = this.#generation;
    this.#wasDown = this.#disconnectedSince !== undefined && this.#generation > 1;
    this.#disconnectedSince = undefined;
    this.hooks.onConnack(connack);
  }

  /** Called on a timer: fails for good once the broker has been away `giveUpAfterMs`. */
  checkGiveUp(): void {
    const since = this.#disconnectedSince;
    if (since === undefined || this.#failure || this.#quiet) return;
    if (Date.now() - since < this.options.giveUpAfterMs) return;
    this.fail(
      new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `MQTT broker at ${this.options.url} unreachable for ${this.options.giveUpAfterMs} ms`,
      ),
    );
  }

  fail(error: JwError): void {
    this.#failure = error;
    this.logger.error({ err: error }, error.message);
    this.hooks.onFail(error);
    this.#rejectFailed(error);
  }

  /** Sends the PUBACK of `messageId` on the current connection. */
  puback(messageId: number): void {
    const packet = {
      cmd: 'puback',
      messageId,
      ...(this.options.protocolVersion === 5 ? { reasonCode: 0 } : {}),
    };
    (this.client as unknown as { _sendPacket(packet: object): void })._sendPacket(packet);
  }
}
