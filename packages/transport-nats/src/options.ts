import type { Logger } from '@jw/core';
import { ErrorCode, JwError } from '@jw/core/errors';

/** Settings of the NATS JetStream transport. Defaults follow the NATS job worker it replaces. */
export interface NatsTransportOptions {
  /** Server URL, or several separated by commas. Default `nats://localhost:4222`. */
  url?: string;
  username?: string;
  password?: string;
  token?: string;
  /** A `.creds` file (JWT + nkey seed) for decentralised auth. */
  credsFile?: string;
  /** TLS: a CA bundle to trust, and a client certificate and key for mutual TLS. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Stream holding the requests; created when missing. Default `JOBS`. */
  stream?: string;
  /** Subject the requests are published on. Default `jobs.pending`. */
  inputSubject?: string;
  /** Results go to `{outputSubject}.{id}`, or to `outputSubject` itself with `flatResults`. Default `jobs.results`. */
  outputSubject?: string;
  /** Publish every result on the bare output subject, like the seed's last release did. */
  flatResults?: boolean;
  /** Raw payloads of requests that can never run. Default `jobs.dead`. */
  deadLetterSubject?: string;
  /** Progress events go to `{progressSubject}.{id}`. Default `jobs.progress`. */
  progressSubject?: string;
  /** Cancels are read from `{cancelSubject}.{id}`. Default `jobs.cancel`. */
  cancelSubject?: string;
  /** Heartbeats go to `{statusSubjectPrefix}.{workerId}.status`. Default `workers`. */
  statusSubjectPrefix?: string;
  /** Durable consumer name; the worker id when not given (instances with the same one compete). */
  durable?: string;
  /** The consumer's ack wait in ms: how long a silent worker keeps a message. Default 30 s. */
  ackWaitMs?: number;
  /** Deliveries before JetStream gives up on a message. Default 10. */
  maxDeliver?: number;
  /** How often in-progress acks are sent while a job runs. Default a third of `ackWaitMs`. */
  workingIntervalMs?: number;
  /** How long one pull waits on the server for a message. Default 5 s. */
  pullExpiresMs?: number;
  /** Heartbeat period; 0 turns heartbeats off. Default 10 s. */
  heartbeatIntervalMs?: number;
  /** Reconnect attempts after a lost connection; -1 for ever. Default 60. */
  reconnectAttempts?: number;
  /** Wait between reconnect attempts. Default 2 s. */
  reconnectWaitMs?: number;
  /**
   * At start, wait this long for a server that is not reachable yet (workers often start
   * before their broker), then fail (the worker exits 1). 0 = wait for ever. Default 5 min.
   */
  giveUpAfterMs?: number;
  /** How long the first connection (TCP, TLS, auth) may take. Default 20 s. */
  connectTimeoutMs?: number;
  /** Worker version, sent in heartbeats. */
  version?: string;
  /** Name for this connection on the server (monitoring). */
  connectionName?: string;
  logger?: Logger;
}

export type ResolvedNatsOptions = Required<
  Omit<
    NatsTransportOptions,
    | 'username'
    | 'password'
    | 'token'
    | 'credsFile'
    | 'tls'
    | 'durable'
    | 'logger'
    | 'version'
    | 'connectionName'
    | 'workingIntervalMs'
  >
> &
  Pick<
    NatsTransportOptions,
    | 'username'
    | 'password'
    | 'token'
    | 'credsFile'
    | 'tls'
    | 'durable'
    | 'version'
    | 'connectionName'
  > & { workingIntervalMs: number };

export const NATS_DEFAULTS = {
  url: 'nats://localhost:4222',
  stream: 'JOBS',
  inputSubject: 'jobs.pending',
  outputSubject: 'jobs.results',
  flatResults: false,
  deadLetterSubject: 'jobs.dead',
  progressSubject: 'jobs.progress',
  cancelSubject: 'jobs.cancel',
  statusSubjectPrefix: 'workers',
  ackWaitMs: 30_000,
  maxDeliver: 10,
  pullExpiresMs: 5_000,
  heartbeatIntervalMs: 10_000,
  reconnectAttempts: 60,
  reconnectWaitMs: 2_000,
  connectTimeoutMs: 20_000,
  giveUpAfterMs: 300_000,
} as const;

const SUBJECT = /^[^\s*>]+$/;
const TOKEN = /^[^\s.*>]+$/;

function bad(message: string): never {
  throw new JwError(ErrorCode.BAD_CONFIG, message);
}

/** Fills in defaults and checks everything once, so nothing deeper re-checks it. */
export function resolveNatsOptions(options: NatsTransportOptions): ResolvedNatsOptions {
  const o = { ...NATS_DEFAULTS, ...stripUndefined(options) };
  for (const key of [
    'inputSubject',
    'outputSubject',
    'deadLetterSubject',
    'progressSubject',
    'cancelSubject',
    'statusSubjectPrefix',
  ] as const) {
    if (!SUBJECT.test(o[key]))
      bad(`${key} must be a subject without spaces or wildcards: ${o[key]}`);
  }
  if (!TOKEN.test(o.stream))
    bad(`stream name must not contain spaces, dots or wildcards: ${o.stream}`);
  if (o.durable !== undefined && !TOKEN.test(o.durable)) {
    bad(`durable name must not contain spaces, dots or wildcards: ${o.durable}`);
  }
  if (!(o.ackWaitMs >= 1000)) bad('ack wait must be at least 1 s');
  if (!(Number.isInteger(o.maxDeliver) && (o.maxDeliver >= 1 || o.maxDeliver === -1))) {
    bad('max deliver must be a positive integer or -1');
  }
  if (!(o.pullExpiresMs >= 1000)) bad('pull expiry must be at least 1 s');
  if (!(o.heartbeatIntervalMs >= 0)) bad('heartbeat interval must not be negative');
  if (!(o.giveUpAfterMs >= 0)) bad('give-up-after must not be negative (0: wait for ever)');
  if (!(Number.isInteger(o.reconnectAttempts) && o.reconnectAttempts >= -1)) {
    bad('reconnect attempts must be an integer, -1 for ever');
  }
  // In-progress acks well inside the ack wait: three chances before the server gives up on us.
  const workingIntervalMs = o.workingIntervalMs ?? Math.floor(o.ackWaitMs / 3);
  if (!(workingIntervalMs > 0 && workingIntervalMs < o.ackWaitMs)) {
    bad('the in-progress ack interval must be shorter than the ack wait');
  }
  return { ...o, workingIntervalMs };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
