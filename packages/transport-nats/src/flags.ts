import { defineOptions, nonEmpty as given, type InferOptions, option } from '@jw/options';
import { NATS_DEFAULTS as d, type NatsTransportOptions } from './options.js';

/**
 * The flags of a NATS worker, as the NATS job worker named them. `P_` in an env name is
 * the app's prefix (`NATS` gives `NATS_URL`). Light: importing it loads no NATS client.
 */
export const natsOptions = defineOptions({
  url: option.string({
    flags: '-u, --url <url>',
    env: 'P_URL',
    default: d.url,
    description: 'NATS server URL (several: comma-separated)',
  }),
  username: option.string({
    flags: '-n, --username <name>',
    env: 'P_USERNAME',
    description: 'NATS username',
  }),
  password: option.string({
    flags: '-p, --password <password>',
    env: 'P_PASSWORD',
    secret: true,
    description: 'NATS password',
  }),
  token: option.string({
    flags: '-t, --token <token>',
    env: 'P_TOKEN',
    secret: true,
    description: 'NATS auth token',
  }),
  creds: option.string({
    flags: '--creds <file>',
    env: 'P_CREDS',
    secret: true,
    description: 'NATS credentials file (JWT and nkey seed)',
  }),
  tlsCa: option.string({
    flags: '--tls-ca <file>',
    env: 'P_TLS_CA',
    description: 'CA bundle to trust for TLS',
  }),
  tlsCert: option.string({
    flags: '--tls-cert <file>',
    env: 'P_TLS_CERT',
    description: 'client certificate for mutual TLS',
  }),
  tlsKey: option.string({
    flags: '--tls-key <file>',
    env: 'P_TLS_KEY',
    secret: true,
    description: 'client key for mutual TLS',
  }),
  stream: option.string({
    flags: '-s, --stream <name>',
    env: 'P_STREAM',
    default: d.stream,
    description: 'JetStream stream name (created when missing)',
  }),
  inputSubject: option.string({
    flags: '-k, --input-subject <subject>',
    env: 'P_INPUT_SUBJECT',
    default: d.inputSubject,
    description: 'subject of job requests',
  }),
  outputSubject: option.string({
    flags: '-r, --output-subject <subject>',
    env: 'P_OUTPUT_SUBJECT',
    default: d.outputSubject,
    description: 'results go to {subject}.{id}',
  }),
  flatResults: option.flag({
    flags: '--flat-results',
    env: 'P_FLAT_RESULTS',
    description: 'publish every result on the bare output subject',
  }),
  deadLetterSubject: option.string({
    flags: '--dead-letter-subject <subject>',
    env: 'P_DEAD_LETTER_SUBJECT',
    default: d.deadLetterSubject,
    description: 'raw payloads of requests that can never run',
  }),
  progressSubject: option.string({
    flags: '--progress-subject <subject>',
    env: 'P_PROGRESS_SUBJECT',
    default: d.progressSubject,
    description: 'progress events go to {subject}.{id}',
  }),
  cancelSubject: option.string({
    flags: '--cancel-subject <subject>',
    env: 'P_CANCEL_SUBJECT',
    default: d.cancelSubject,
    description: 'cancel a job by publishing on {subject}.{id}',
  }),
  ackWait: option.duration({
    flags: '--ack-wait <duration>',
    env: 'P_ACK_WAIT',
    unit: 's',
    min: 1000,
    default: '30',
    description: 'consumer ack wait; in-progress acks go out every third of it',
  }),
  maxDeliver: option.int({
    flags: '--max-deliver <n>',
    env: 'P_MAX_DELIVER',
    min: -1,
    default: d.maxDeliver,
    description: 'deliveries of one message before it is dead-lettered (-1: no limit)',
  }),
  heartbeatInterval: option.duration({
    flags: '--heartbeat-interval <duration>',
    env: 'P_HEARTBEAT_INTERVAL',
    unit: 's',
    default: '10',
    description: 'status on workers.{id}.status (0: off)',
  }),
  reconnectAttempts: option.int({
    flags: '--reconnect-attempts <n>',
    env: 'P_RECONNECT_ATTEMPTS',
    min: -1,
    default: d.reconnectAttempts,
    description: 'reconnect tries before giving up (-1: for ever)',
  }),
  reconnectWait: option.duration({
    flags: '--reconnect-wait <duration>',
    env: 'P_RECONNECT_WAIT',
    unit: 's',
    default: '2',
    description: 'pause between reconnect tries',
  }),
  giveUpAfter: option.duration({
    flags: '--give-up-after <duration>',
    env: 'P_GIVE_UP_AFTER',
    unit: 's',
    default: '5m',
    description: 'at start, wait this long for an unreachable server, then exit 1 (0 = for ever)',
  }),
});

export type NatsOptionValues = InferOptions<typeof natsOptions>;

/** The transport settings of parsed `natsOptions`, plus what only the app knows. */
export function natsTransportOptions(
  o: NatsOptionValues,
  extra: Pick<NatsTransportOptions, 'version' | 'connectionName' | 'logger' | 'durable'> = {},
): NatsTransportOptions {
  return {
    url: o.url,
    username: given(o.username),
    password: given(o.password),
    token: given(o.token),
    credsFile: given(o.creds),
    tls: { caFile: given(o.tlsCa), certFile: given(o.tlsCert), keyFile: given(o.tlsKey) },
    stream: o.stream,
    inputSubject: o.inputSubject,
    outputSubject: o.outputSubject,
    flatResults: o.flatResults,
    deadLetterSubject: o.deadLetterSubject,
    progressSubject: o.progressSubject,
    cancelSubject: o.cancelSubject,
    ackWaitMs: o.ackWait,
    maxDeliver: o.maxDeliver,
    heartbeatIntervalMs: o.heartbeatInterval,
    reconnectAttempts: o.reconnectAttempts,
    reconnectWaitMs: o.reconnectWait,
    giveUpAfterMs: o.giveUpAfter,
    ...extra,
  };
}
