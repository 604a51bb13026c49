import { readFile } from 'node:fs/promises';
import { ErrorCode, JwError, type Logger, silentLogger } from '@jw/core';
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
import { pause } from './pause.js';

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

const FIRST_RETRY_MS = 250;
const MIN_RETRY_MS = 50;

/** Refusals that no wait cures: bad credentials. */
function refusedForGood(error: unknown): boolean {
  return error instanceof AuthorizationError || error instanceof UserAuthenticationExpiredError;
}

/** The attempt's connection, or undefined when the signal aborted first (a late one is closed). */
async function attempt(
  opts: ConnectionOptions,
  signal: AbortSignal | undefined,
): Promise<NatsConnection | undefined> {
  const pending = connect(opts);
  if (!signal) return pending;
  let onAbort!: () => void;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  if (signal.aborted) onAbort();
  try {
    const nc = await Promise.race([pending, aborted]);
    if (nc === undefined) {
      pending.then((late) => late.close()).catch(() => {});
    }
    return nc;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export interface OpenOptions {
  /** Aborting stops the wait for the server; `openConnection` then fails with TRANSPORT_FAILED. */
  signal?: AbortSignal;
  logger?: Logger;
}

/**
 * Connects, waiting for a server that is not there yet (workers often start
 * before their broker) up to `giveUpAfterMs`. Fails with BAD_CONFIG on refused
 * credentials at once, with TRANSPORT_FAILED when the wait ends or the signal
 * aborts.
 */
export async function openConnection(
  options: ResolvedNatsOptions,
  name: string,
  { signal, logger = silentLogger }: OpenOptions = {},
): Promise<NatsConnection> {
  const opts = await connectionOptions(options, name);
  const giveUpAt =
    options.giveUpAfterMs > 0 ? Date.now() + options.giveUpAfterMs : Number.POSITIVE_INFINITY;
  // Never a tight loop, even with a reconnect wait of 0.
  let wait = Math.max(MIN_RETRY_MS, Math.min(FIRST_RETRY_MS, options.reconnectWaitMs));
  let tries = 0;
  for (;;) {
    if (signal?.aborted) throw stoppedBeforeConnecting();
    tries++;
    let failure: unknown;
    try {
      const nc = await attempt(opts, signal);
      if (nc) {
        if (tries > 1) logger.info({ url: options.url, tries }, 'NATS server reachable');
        return nc;
      }
      throw stoppedBeforeConnecting();
    } catch (error) {
      if (error instanceof JwError) throw error;
      failure = error;
    }
    const message = failure instanceof Error ? failure.message : String(failure);
    if (refusedForGood(failure)) {
      throw new JwError(ErrorCode.BAD_CONFIG, `NATS at ${options.url} refused us: ${message}`, {
        cause: failure,
      });
    }
    const left = giveUpAt - Date.now();
    if (left <= 0) {
      throw new JwError(
        ErrorCode.TRANSPORT_FAILED,
        `no NATS server at ${options.url} within ${formatMs(options.giveUpAfterMs)} (last error: ${message})`,
        { cause: failure },
      );
    }
    // The first miss is worth a line; the rest of the wait would flood the log.
    (tries === 1 ? logger.warn : logger.debug).call(
      logger,
      { url: options.url, err: message, giveUpAfterMs: options.giveUpAfterMs },
      'NATS server not reachable; waiting for it',
    );
    await pause(Math.min(wait, left), signal);
    wait = Math.min(wait * 2, Math.max(options.reconnectWaitMs, wait));
  }
}

function stoppedBeforeConnecting(): JwError {
  return new JwError(ErrorCode.TRANSPORT_FAILED, 'stopped before the NATS server answered');
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
