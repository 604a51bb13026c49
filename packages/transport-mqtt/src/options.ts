import { ErrorCode, JwError } from '@jw/core/errors';
import { isValidFilter, isValidTopicName } from './topics.js';

/** Where the transport publishes and listens, besides the request topic (SPEC 7). */
export interface MqttTopics {
  /** Results go to `{results}/{id}`. */
  results: string;
  /** Progress events go to `{progress}/{id}`. */
  progress: string;
  /** Cancels are read from `{cancel}/{id}`. */
  cancel: string;
  /** The retained status goes to `{workers}/{workerId}/status`. */
  workers: string;
  /** One record per request that could not be run. */
  deadLetter: string;
}

export interface MqttTransportOptions {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string;
  username?: string;
  password?: string;
  /** The request topic filter: `jobs/pending`, `$share/group/jobs/pending`, wildcards allowed. */
  topic?: string;
  /** MQTT client id; defaults to the worker id. */
  clientId?: string;
  /** Clean session (MQTT 5: the session ends with the connection). Default false: persistent. */
  clean?: boolean;
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5;
  /** MQTT 5 session expiry of a persistent session, in seconds. Default 7 days. */
  sessionExpirySeconds?: number;
  /** Keepalive in seconds. Default 30. */
  keepaliveSeconds?: number;
  /** Topic prefixes; each defaults to the SPEC 7 name. */
  topics?: Partial<MqttTopics>;
  /** TLS: PEM contents (not paths) of the CA, client certificate and key. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Refuse brokers whose certificate does not verify. Default true. */
  rejectUnauthorized?: boolean;
  /** Scan the jobs dir for jobs of dead workers at start. Default true. */
  recover?: boolean;
  /** Scan again every this many ms; 0 = only at start. Default 10 s. */
  recoverIntervalMs?: number;
  /** How often the retained status is refreshed, in ms. Default 30 s. */
  heartbeatIntervalMs?: number;
  /** First reconnect delay; doubles up to `reconnectMaxMs`. Defaults 500 ms and 30 s. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Without a broker for this long, the transport fails (worker exits 1). 0 = never. Default 5 min. */
  giveUpAfterMs?: number;
  /** Dead-letter records carry at most this many bytes of the raw payload. Default 256 KiB. */
  deadLetterPayloadBytes?: number;
}

export type ResolvedOptions = Required<
  Omit<
    MqttTransportOptions,
    'username' | 'password' | 'clientId' | 'ca' | 'cert' | 'key' | 'topics'
  >
> &
  Pick<MqttTransportOptions, 'username' | 'password' | 'clientId' | 'ca' | 'cert' | 'key'> & {
    topics: MqttTopics;
  };

export const DEFAULT_TOPICS: MqttTopics = {
  results: 'jobs/results',
  progress: 'jobs/progress',
  cancel: 'jobs/cancel',
  workers: 'workers',
  deadLetter: 'jobs/dead',
};

const DEFAULTS = {
  topic: 'jobs/pending',
  clean: false,
  protocolVersion: 5,
  sessionExpirySeconds: 7 * 24 * 3600,
  keepaliveSeconds: 30,
  rejectUnauthorized: true,
  recover: true,
  recoverIntervalMs: 10_000,
  heartbeatIntervalMs: 30_000,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  giveUpAfterMs: 300_000,
  deadLetterPayloadBytes: 256 * 1024,
} as const;

function bad(message: string): JwError {
  return new JwError(ErrorCode.BAD_CONFIG, message);
}

/** Accepts `5`, `4`, `3.1.1`, `mqttv5`… as given on a command line; undefined means the default. */
export function parseProtocolVersion(value: string | number | undefined): 4 | 5 | undefined {
  if (value === undefined || value === '') return undefined;
  const text = String(value)
    .trim()
    .toLowerCase()
    .replace(/^mqttv?/, '');
  if (text === '5' || text === '5.0') return 5;
  if (text === '4' || text === '3.1.1' || text === '311') return 4;
  throw bad(`MQTT protocol version must be 5 or 3.1.1, not ${JSON.stringify(value)}`);
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0)
    throw bad(`${name} must be a number >= 0, not ${value}`);
  return value;
}

/** Validates once, at the edge; nothing below re-checks. */
export function resolveOptions(options: MqttTransportOptions): ResolvedOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw bad(`MQTT URL ${JSON.stringify(options.url)} is not a URL`);
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:'].includes(url.protocol)) {
    throw bad(`MQTT URL must start with mqtt:// or mqtts://, not ${url.protocol}//`);
  }
  const topics = { ...DEFAULT_TOPICS, ...options.topics };
  for (const [name, prefix] of Object.entries(topics)) {
    if (!isValidTopicName(prefix))
      throw bad(`${name} topic ${JSON.stringify(prefix)} must be a topic name without wildcards`);
  }
  const topic = options.topic ?? DEFAULTS.topic;
  if (!isValidFilter(topic))
    throw bad(`request topic ${JSON.stringify(topic)} is not a valid MQTT topic filter`);
  const resolved: ResolvedOptions = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    url: url.toString(),
    topic,
    topics,
  } as ResolvedOptions;
  if (resolved.protocolVersion !== 4 && resolved.protocolVersion !== 5) {
    throw bad(`MQTT protocol version must be 5 or 4 (3.1.1), not ${resolved.protocolVersion}`);
  }
  for (const key of [
    'sessionExpirySeconds',
    'keepaliveSeconds',
    'recoverIntervalMs',
    'heartbeatIntervalMs',
    'reconnectMinMs',
    'reconnectMaxMs',
    'giveUpAfterMs',
    'deadLetterPayloadBytes',
  ] as const) {
    nonNegative(key, resolved[key]);
  }
  if (
    resolved.protocolVersion === 4 &&
    resolved.password !== undefined &&
    resolved.username === undefined
  ) {
    throw bad('MQTT 3.1.1 does not allow a password without a username');
  }
  return resolved;
}
