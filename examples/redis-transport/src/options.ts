import { ErrorCode, JwError, type Logger } from '@jw/core';

export interface RedisTransportOptions {
  /** Server URL (`redis://`, `rediss://` for TLS). Default `redis://localhost:6379`. */
  url?: string;
  /** A unix socket path; wins over `url`. */
  socketPath?: string;
  username?: string;
  /** Default: env `REDIS_PASSWORD`. */
  password?: string;
  /** Prefix of every key and channel. Default `jobs`: requests on the stream `jobs:pending`. */
  prefix?: string;
  /** Consumer group of the workers that share the requests. Default `jw`. */
  group?: string;
  /**
   * A delivery pending this long without a keepalive belongs to a dead worker, and any
   * worker takes it over (XAUTOCLAIM). Held deliveries are kept alive every third of it.
   * Default 30 s.
   */
  claimIdleMs?: number;
  /** How long one XREADGROUP blocks before looking for deliveries of dead workers again. Default 5 s. */
  blockMs?: number;
  /** Result streams expire this long after their last result; 0 keeps them. Default 7 days. */
  resultTtlSeconds?: number;
  logger?: Logger;
}

export type ResolvedRedisOptions = Required<
  Omit<RedisTransportOptions, 'socketPath' | 'username' | 'password' | 'logger'>
> &
  Pick<RedisTransportOptions, 'socketPath' | 'username' | 'password'>;

export const REDIS_DEFAULTS = {
  url: 'redis://localhost:6379',
  prefix: 'jobs',
  group: 'jw',
  claimIdleMs: 30_000,
  blockMs: 5_000,
  resultTtlSeconds: 7 * 24 * 3600,
} as const;

function positive(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min)
    throw new JwError(ErrorCode.BAD_CONFIG, `${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/** Fills in the defaults and checks the options once, at the edge. */
export function resolveRedisOptions(o: RedisTransportOptions): ResolvedRedisOptions {
  const r = { ...REDIS_DEFAULTS, ...stripUndefined(o) };
  if (!r.prefix || /[\s*?[\]]/.test(r.prefix))
    throw new JwError(
      ErrorCode.BAD_CONFIG,
      `prefix ${JSON.stringify(r.prefix)} must be a plain key prefix`,
    );
  if (!r.group) throw new JwError(ErrorCode.BAD_CONFIG, 'group must not be empty');
  return {
    url: r.url,
    prefix: r.prefix,
    group: r.group,
    claimIdleMs: positive('claimIdleMs', r.claimIdleMs, 300),
    blockMs: positive('blockMs', r.blockMs, 10),
    resultTtlSeconds: positive('resultTtlSeconds', r.resultTtlSeconds, 0),
    socketPath: o.socketPath,
    username: o.username,
    password: o.password ?? process.env.REDIS_PASSWORD,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
