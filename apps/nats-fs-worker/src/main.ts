import { runWorkerApp } from '@jw/cli';
import { createNatsTransport, NATS_DEFAULTS, NATS_SECRET_ENV } from '@jw/transport-nats';
import pkg from '../package.json' with { type: 'json' };

const d = NATS_DEFAULTS;

runWorkerApp({
  name: 'nats-fs-worker',
  version: pkg.version,
  description: 'Run jw jobs signalled over NATS JetStream (drop-in for the NATS job worker).',
  transportName: 'nats',
  envPrefix: 'NATS',
  // One-shot as before: one job, then exit (a supervisor restarts it for a fresh environment).
  defaults: { maxJobs: 1, idleTimeout: '60' },
  common: {
    timeout: { flags: '-o, --timeout <minutes>', env: 'JOB_TIMEOUT', default: '30' },
  },
  secretEnv: [...NATS_SECRET_ENV],
  options: {
    url: {
      flags: '-u, --url <url>',
      env: 'NATS_URL',
      default: d.url,
      description: 'NATS server URL (several: comma-separated)',
    },
    username: {
      flags: '-n, --username <name>',
      env: 'NATS_USERNAME',
      description: 'NATS username',
    },
    password: {
      flags: '-p, --password <password>',
      env: 'NATS_PASSWORD',
      secret: true,
      description: 'NATS password',
    },
    token: {
      flags: '-t, --token <token>',
      env: 'NATS_TOKEN',
      secret: true,
      description: 'NATS auth token',
    },
    creds: {
      flags: '--creds <file>',
      env: 'NATS_CREDS',
      secret: true,
      description: 'NATS credentials file (JWT and nkey seed)',
    },
    tlsCa: {
      flags: '--tls-ca <file>',
      env: 'NATS_TLS_CA',
      description: 'CA bundle to trust for TLS',
    },
    tlsCert: {
      flags: '--tls-cert <file>',
      env: 'NATS_TLS_CERT',
      description: 'client certificate for mutual TLS',
    },
    tlsKey: {
      flags: '--tls-key <file>',
      env: 'NATS_TLS_KEY',
      secret: true,
      description: 'client key for mutual TLS',
    },
    stream: {
      flags: '-s, --stream <name>',
      env: 'NATS_STREAM',
      default: d.stream,
      description: 'JetStream stream name (created when missing)',
    },
    inputSubject: {
      flags: '-k, --input-subject <subject>',
      env: 'NATS_INPUT_SUBJECT',
      default: d.inputSubject,
      description: 'subject of job requests',
    },
    outputSubject: {
      flags: '-r, --output-subject <subject>',
      env: 'NATS_OUTPUT_SUBJECT',
      default: d.outputSubject,
      description: 'results go to {subject}.{id}',
    },
    flatResults: {
      flags: '--flat-results',
      env: 'NATS_FLAT_RESULTS',
      type: 'boolean',
      default: false,
      description: 'publish every result on the bare output subject',
    },
    deadLetterSubject: {
      flags: '--dead-letter-subject <subject>',
      env: 'NATS_DEAD_LETTER_SUBJECT',
      default: d.deadLetterSubject,
      description: 'raw payloads of requests that can never run',
    },
    progressSubject: {
      flags: '--progress-subject <subject>',
      env: 'NATS_PROGRESS_SUBJECT',
      default: d.progressSubject,
      description: 'progress events go to {subject}.{id}',
    },
    cancelSubject: {
      flags: '--cancel-subject <subject>',
      env: 'NATS_CANCEL_SUBJECT',
      default: d.cancelSubject,
      description: 'cancel a job by publishing on {subject}.{id}',
    },
    ackWait: {
      flags: '--ack-wait <duration>',
      env: 'NATS_ACK_WAIT',
      type: 'duration',
      unit: 's',
      min: 1000,
      default: '30',
      description: 'consumer ack wait; in-progress acks go out every third of it',
    },
    maxDeliver: {
      flags: '--max-deliver <n>',
      env: 'NATS_MAX_DELIVER',
      type: 'int',
      min: -1,
      default: d.maxDeliver,
      description: 'deliveries of one message before it is dead-lettered (-1: no limit)',
    },
    heartbeatInterval: {
      flags: '--heartbeat-interval <duration>',
      env: 'NATS_HEARTBEAT_INTERVAL',
      type: 'duration',
      unit: 's',
      default: '10',
      description: 'status on workers.{id}.status (0: off)',
    },
    reconnectAttempts: {
      flags: '--reconnect-attempts <n>',
      env: 'NATS_RECONNECT_ATTEMPTS',
      type: 'int',
      min: -1,
      default: d.reconnectAttempts,
      description: 'reconnect tries before giving up (-1: for ever)',
    },
    reconnectWait: {
      flags: '--reconnect-wait <duration>',
      env: 'NATS_RECONNECT_WAIT',
      type: 'duration',
      unit: 's',
      default: '2',
      description: 'pause between reconnect tries',
    },
    giveUpAfter: {
      flags: '--give-up-after <duration>',
      env: 'NATS_GIVE_UP_AFTER',
      type: 'duration',
      unit: 's',
      default: '5m',
      description: 'at start, wait this long for an unreachable server, then exit 1 (0 = for ever)',
    },
  },
  createTransport: ({ options, common }) => {
    const o = options as Record<string, string | number | boolean | undefined>;
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    return createNatsTransport({
      url: o.url as string,
      username: str(o.username),
      password: str(o.password),
      token: str(o.token),
      credsFile: str(o.creds),
      tls: { caFile: str(o.tlsCa), certFile: str(o.tlsCert), keyFile: str(o.tlsKey) },
      stream: o.stream as string,
      inputSubject: o.inputSubject as string,
      outputSubject: o.outputSubject as string,
      flatResults: o.flatResults as boolean,
      deadLetterSubject: o.deadLetterSubject as string,
      progressSubject: o.progressSubject as string,
      cancelSubject: o.cancelSubject as string,
      ackWaitMs: o.ackWait as number,
      maxDeliver: o.maxDeliver as number,
      heartbeatIntervalMs: o.heartbeatInterval as number,
      reconnectAttempts: o.reconnectAttempts as number,
      reconnectWaitMs: o.reconnectWait as number,
      giveUpAfterMs: o.giveUpAfter as number,
      version: pkg.version,
      connectionName: `nats-fs-worker ${common.id} ${common.hostname}:${process.pid}`,
    });
  },
});
