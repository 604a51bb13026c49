import { ErrorCode, JwError, type Logger } from '@jw/core';
import { createClient } from 'redis';
import type { ResolvedRedisOptions } from './options.js';

export type RedisClient = ReturnType<typeof createClient>;

/**
 * A connected client. Each transport opens three: commands, one for the blocking
 * XREADGROUP (a blocked connection answers nothing else), one for pub/sub.
 */
export async function openClient(
  o: ResolvedRedisOptions,
  name: string,
  logger: Logger,
  signal: AbortSignal,
): Promise<RedisClient> {
  const client = createClient({
    ...(o.socketPath ? { socket: { path: o.socketPath, tls: false as const } } : { url: o.url }),
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    name,
  });
  let lost = false;
  client.on('error', (error: Error) => {
    // Reconnects on its own; say it once per outage.
    if (!lost) logger.warn({ err: error, client: name }, 'redis connection lost');
    lost = true;
  });
  client.on('ready', () => {
    if (lost) logger.info({ client: name }, 'redis reconnected');
    lost = false;
  });
  const gaveUp = new Promise<never>((_, reject) => {
    const fail = () =>
      reject(new JwError(ErrorCode.TRANSPORT_FAILED, 'stopped while connecting to redis'));
    if (signal.aborted) fail();
    signal.addEventListener('abort', fail, { once: true });
  });
  gaveUp.catch(() => {});
  try {
    await Promise.race([client.connect(), gaveUp]);
    return client;
  } catch (error) {
    client.destroy();
    if (error instanceof JwError) throw error;
    throw new JwError(
      ErrorCode.TRANSPORT_FAILED,
      `cannot connect to redis: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
