import { readFile } from 'node:fs/promises';
import { badSetting, runWorkerApp } from '@jw/cli';
import { createMqttTransport, DEFAULT_TOPICS, parseProtocolVersion } from '@jw/transport-mqtt';
import pkg from '../package.json' with { type: 'json' };

async function pem(file: unknown, what: string): Promise<Buffer | undefined> {
  if (typeof file !== 'string' || file === '') return undefined;
  return readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw badSetting(`${what} ${file} is not readable (${error.code ?? error.message})`);
  });
}

runWorkerApp({
  name: 'mqtt-fs-worker',
  version: pkg.version,
  description: 'Run jw jobs signalled over MQTT (drop-in for the MQTT job worker).',
  transportName: 'mqtt',
  envPrefix: 'MQTT',
  // One-shot as before: one job, then exit (a supervisor restarts it for a fresh environment).
  defaults: { maxJobs: 1 },
  secretEnv: ['MQTT_PASSWORD'],
  options: {
    url: {
      flags: '-u, --url <url>',
      env: 'MQTT_URL',
      default: 'mqtt://localhost:1883',
      description: 'MQTT broker URL (mqtt:// or mqtts://)',
    },
    username: {
      flags: '-n, --username <name>',
      env: 'MQTT_USERNAME',
      description: 'MQTT username',
    },
    password: {
      flags: '-p, --password <password>',
      env: 'MQTT_PASSWORD',
      secret: true,
      description: 'MQTT password',
    },
    topic: {
      flags: '-t, --topic <topic>',
      env: 'MQTT_TOPIC',
      default: 'jobs/pending',
      description: 'request topic filter ($share/<group>/... and wildcards allowed)',
    },
    clean: {
      flags: '--clean',
      env: 'MQTT_CLEAN',
      type: 'boolean',
      default: false,
      description: 'use a clean MQTT session',
    },
    protocolVersion: {
      flags: '-v, --protocol-version <version>',
      env: 'MQTT_PROTOCOL_VERSION',
      default: '5',
      choices: ['5', '5.0', 'mqttv5', '4', '3.1.1', 'mqttv311'],
      description: 'MQTT protocol: 5 or 3.1.1 (also as mosquitto_pub names them: mqttv5, mqttv311)',
    },
    sessionExpiry: {
      flags: '--session-expiry <duration>',
      env: 'MQTT_SESSION_EXPIRY',
      type: 'duration',
      unit: 's',
      default: '168h',
      description:
        'MQTT 5: how long the broker keeps a persistent session (and its queued jobs) while the worker is away',
    },
    keepalive: {
      flags: '--keepalive <duration>',
      env: 'MQTT_KEEPALIVE',
      type: 'duration',
      unit: 's',
      default: '30',
      description: 'MQTT keepalive',
    },
    ca: {
      flags: '--ca <file>',
      env: 'MQTT_CA',
      description: 'CA certificate (PEM) to trust for mqtts://',
    },
    cert: {
      flags: '--cert <file>',
      env: 'MQTT_CERT',
      description: 'client certificate (PEM) for mutual TLS',
    },
    key: { flags: '--key <file>', env: 'MQTT_KEY', description: 'client key (PEM) for mutual TLS' },
    insecure: {
      flags: '--insecure',
      env: 'MQTT_INSECURE',
      type: 'boolean',
      default: false,
      description: 'do not verify the broker certificate',
    },
    deadLetterTopic: {
      flags: '--dead-letter-topic <topic>',
      env: 'MQTT_DEAD_LETTER_TOPIC',
      default: DEFAULT_TOPICS.deadLetter,
      description: 'where requests that cannot run are recorded',
    },
    recoverInterval: {
      flags: '--recover-interval <duration>',
      env: 'MQTT_RECOVER_INTERVAL',
      type: 'duration',
      unit: 's',
      default: '10',
      description: 'scan the jobs dir for jobs of dead workers this often (0 = only at start-up)',
    },
    skipRecovery: {
      flags: '--skip-recovery',
      env: 'MQTT_SKIP_RECOVERY',
      type: 'boolean',
      default: false,
      description: 'never scan the jobs dir for jobs of dead workers',
    },
    heartbeatInterval: {
      flags: '--heartbeat-interval <duration>',
      env: 'MQTT_HEARTBEAT_INTERVAL',
      type: 'duration',
      unit: 's',
      default: '30',
      description: 'refresh the retained workers/<id>/status this often',
    },
    giveUpAfter: {
      flags: '--give-up-after <duration>',
      env: 'MQTT_GIVE_UP_AFTER',
      type: 'duration',
      unit: 's',
      default: '5m',
      description: 'exit 1 when the broker stays unreachable this long (0 = never)',
    },
  },
  createTransport: async ({ options: o, common }) =>
    createMqttTransport({
      url: o.url as string,
      username: o.username as string | undefined,
      password: o.password as string | undefined,
      topic: o.topic as string,
      clientId: common.id,
      clean: o.clean as boolean,
      protocolVersion: parseProtocolVersion(o.protocolVersion as string) ?? 5,
      sessionExpirySeconds: Math.round((o.sessionExpiry as number) / 1000),
      keepaliveSeconds: Math.round((o.keepalive as number) / 1000),
      ca: await pem(o.ca, 'CA file'),
      cert: await pem(o.cert, 'certificate file'),
      key: await pem(o.key, 'key file'),
      rejectUnauthorized: !(o.insecure as boolean),
      topics: { deadLetter: o.deadLetterTopic as string },
      recover: !(o.skipRecovery as boolean),
      recoverIntervalMs: o.recoverInterval as number,
      heartbeatIntervalMs: o.heartbeatInterval as number,
      giveUpAfterMs: o.giveUpAfter as number,
      secretEnv: ['MQTT_PASSWORD'],
    }),
});
