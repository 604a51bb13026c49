import { readFile } from 'node:fs/promises';
import { ErrorCode, JwError } from '@jw/core';
import {
  type Authenticator,
  AuthorizationError,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  UserAuthenticationExpiredError,
} from '@nats-io/transport-node';
import type { ResolvedNatsOptions } from './options.js';

/** Connection options from transport settings: servers, auth, TLS, reconnect. */
export async function connectionOptions(
  options: ResolvedNatsOptions,
  name: string,
): Promise<ConnectionOptions> {
  const authenticator: Authenticator[] = [];
  if (options.credsFile !== undefined) {
    const creds = await readFile(options.credsFile).catch((error: NodeJS.ErrnoException) => {
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `creds file ${options.credsFile} is not readable: ${error.code ?? error.message}`,
      );
    });
    authenticator.push(credsAuthenticator(new Uint8Array(creds)));
  }
  const tls = options.tls;
  const useTls =
    tls !== undefined &&
    (tls.caFile !== undefined || tls.certFile !== undefined || tls.keyFile !== undefined);
  return {
    servers: options.url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    name,
    ...(options.username === undefined ? {} : { user: options.username }),
    ...(options.password === undefined ? {} : { pass: options.password }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(authenticator.length > 0 ? { authenticator } : {}),
    ...(useTls
      ? {
          tls: {
            ...(tls.caFile === undefined ? {} : { caFile: tls.caFile }),
            ...(tls.certFile === undefined ? {} : { certFile: tls.certFile }),
            ...(tls.keyFile === undefined ? {} : { keyFile: tls.keyFile }),
          },
        }
      : {}),
    reconnect: true,
    maxReconnectAttempts: options.reconnectAttempts,
    reconnectTimeWait: options.reconnectWaitMs,
    timeout: options.connectTimeoutMs,
  };
}

/** Connects or fails with TRANSPORT_FAILED (server away) or BAD_CONFIG (refused credentials). */
export async function openConnection(
  options: ResolvedNatsOptions,
  name: string,
): Promise<NatsConnection> {
  const opts = await connectionOptions(options, name);
  try {
    return await connect(opts);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const auth =
      error instanceof AuthorizationError || error instanceof UserAuthenticationExpiredError;
    throw new JwError(
      auth ? ErrorCode.BAD_CONFIG : ErrorCode.TRANSPORT_FAILED,
      `cannot connect to NATS at ${options.url}: ${message}`,
      { cause: error },
    );
  }
}
