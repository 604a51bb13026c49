import { readFile } from 'node:fs/promises';
import { badSetting, defineOptions, type InferOptions, option } from '@jw/options';
import { DEFAULT_TOPICS, type MqttTransportOptions, parseProtocolVersion } from './options.js';

/**
 * The flags of an MQTT worker, as the MQTT job worker named them. `P_` in an env name is
 * the app's prefix (`MQTT` gives `MQTT_URL`). Light: importing it loads no MQTT client.
 */
export const mqttOptions = defineOptions({
  url: option.string({
    flags: '-u, --url <url>',
    env: 'P_URL',
    default: 'mqtt://localhost:1883',
    description: 'MQTT broker URL (mqtt:// or mqtts://)',
  }),
  username: option.string({
    flags: '-n, --username <name>',
    env: 'P_USERNAME',
    description: 'MQTT username',
  }),
  password: option.string({
    flags: '-p, --password <password>',
    env: 'P_PASSWORD',
    secret: true,
    description: 'MQTT password',
  }),
  topic: option.string({
    flags: '-t, --topic <topic>',
    env: 'P_TOPIC',
    default: 'jobs/pending',
    description: 'request topic filter ($share/<group>/... and wildcards allowed)',
  }),
  clean: option.flag({
    flags: '--clean',
    env: 'P_CLEAN',
    description: 'use a clean MQTT session',
  }),
  protocolVersion: option.choice(['5', '5.0', 'mqttv5', '4', '3.1.1', 'mqttv311'], {
    flags: '-v, --protocol-version <version>',
    env: 'P_PROTOCOL_VERSION',
    default: '5',
    description: 'MQTT protocol: 5 or 3.1.1 (also as mosquitto_pub names them: mqttv5, mqttv311)',
  }),
  sessionExpiry: option.duration({
    flags: '--session-expiry <duration>',
    env: 'P_SESSION_EXPIRY',
    unit: 's',
    default: '168h',
    description:
      'MQTT 5: how long the broker keeps a persistent session (and its queued jobs) while the worker is away',
  }),
  keepalive: option.duration({
    flags: '--keepalive <duration>',
    env: 'P_KEEPALIVE',
    unit: 's',
    default: '30',
    description: 'MQTT keepalive',
  }),
  ca: option.string({
    flags: '--ca <file>',
    env: 'P_CA',
    description: 'CA certificate (PEM) to trust for mqtts://',
  }),
  cert: option.string({
    flags: '--cert <file>',
    env: 'P_CERT',
    description: 'client certificate (PEM) for mutual TLS',
  }),
  key: option.string({
    flags: '--key <file>',
    env: 'P_KEY',
    description: 'client key (PEM) for mutual TLS',
  }),
  insecure: option.flag({
    flags: '--insecure',
    env: 'P_INSECURE',
    description: 'do not verify the broker certificate',
  }),
  deadLetterTopic: option.string({
    flags: '--dead-letter-topic <topic>',
    env: 'P_DEAD_LETTER_TOPIC',
    default: DEFAULT_TOPICS.deadLetter,
    description: 'where requests that cannot run are recorded',
  }),
  recoverInterval: option.duration({
    flags: '--recover-interval <duration>',
    env: 'P_RECOVER_INTERVAL',
    unit: 's',
    default: '10',
    description: 'scan the jobs dir for jobs of dead workers this often (0 = only at start-up)',
  }),
  skipRecovery: option.flag({
    flags: '--skip-recovery',
    env: 'P_SKIP_RECOVERY',
    description: 'never scan the jobs dir for jobs of dead workers',
  }),
  heartbeatInterval: option.duration({
    flags: '--heartbeat-interval <duration>',
    env: 'P_HEARTBEAT_INTERVAL',
    unit: 's',
    default: '30',
    description: 'refresh the retained workers/<id>/status this often',
  }),
  giveUpAfter: option.duration({
    flags: '--give-up-after <duration>',
    env: 'P_GIVE_UP_AFTER',
    unit: 's',
    default: '5m',
    description: 'exit 1 when the broker stays unreachable this long (0 = never)',
  }),
});

export type MqttOptionValues = InferOptions<typeof mqttOptions>;

async function pem(file: string | undefined, what: string): Promise<Buffer | undefined> {
  if (!file) return undefined;
  return readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw badSetting(`${what} ${file} is not readable (${error.code ?? error.message})`);
  });
}

const seconds = (ms: number) => Math.round(ms / 1000);

/** The transport settings of parsed `mqttOptions` (reads the PEM files), plus the client id. */
export async function mqttTransportOptions(
  o: MqttOptionValues,
  extra: Pick<MqttTransportOptions, 'clientId'> = {},
): Promise<MqttTransportOptions> {
  return {
    url: o.url,
    username: o.username,
    password: o.password,
    topic: o.topic,
    clean: o.clean,
    protocolVersion: parseProtocolVersion(o.protocolVersion) ?? 5,
    sessionExpirySeconds: seconds(o.sessionExpiry),
    keepaliveSeconds: seconds(o.keepalive),
    ca: await pem(o.ca, 'CA file'),
    cert: await pem(o.cert, 'certificate file'),
    key: await pem(o.key, 'key file'),
    rejectUnauthorized: !o.insecure,
    topics: { deadLetter: o.deadLetterTopic },
    recover: !o.skipRecovery,
    recoverIntervalMs: o.recoverInterval,
    heartbeatIntervalMs: o.heartbeatInterval,
    giveUpAfterMs: o.giveUpAfter,
    ...extra,
  };
}
