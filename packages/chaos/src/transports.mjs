// One adapter per transport: its broker, its worker command line, and a controller
// that submits the jobs and counts the result messages it receives.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { backendService, mosquittoService, natsService, sleep } from './services.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BINARIES = {
  file: path.join(repo, 'apps/file-worker/dist/main.cjs'),
  nats: path.join(repo, 'apps/nats-fs-worker/dist/main.cjs'),
  mqtt: path.join(repo, 'apps/mqtt-fs-worker/dist/main.cjs'),
  http: path.join(repo, 'apps/http-agent/dist/main.cjs'),
  backend: path.join(repo, 'packages/transport-http-poll/dist/backend/main.js'),
};

export const TRANSPORTS = ['file', 'nats', 'http', 'mqtt'];

const FINAL_HTTP = new Set(['finished', 'failed', 'stopped', 'canceled']);
const daemon = ['--max-jobs', '0', '--idle-timeout', '0', '--log-format', 'json'];

/** Result messages per job id, as the controller received them. */
export class ResultLog {
  constructor() {
    /** @type {Map<string, number>} */
    this.counts = new Map();
    this.total = 0;
  }

  add(id) {
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    this.total++;
  }

  has(id) {
    return this.counts.has(id);
  }

  get finished() {
    return this.counts.size;
  }
}

/**
 * @typedef {object} Adapter
 * @property {string} name
 * @property {string} jobsDir
 * @property {string} workspacesDir
 * @property {{ restart(ms: number): Promise<void>, close(): Promise<void> } | undefined} broker
 * @property {RegExp} ready worker log line once it takes work
 * @property {(slot: number) => { command: string, args: string[] }} worker
 * @property {ResultLog} results
 * @property {string[]} stateDirs where temp files must not be left (besides jobs results)
 * @property {string | undefined} processingDir
 * @property {() => Promise<void>} start controller and broker, before the workers
 * @property {() => Promise<void>} afterWorkersReady
 * @property {(ids: string[]) => Promise<void>} submit
 * @property {() => Promise<void>} afterBrokerRestart
 * @property {() => Promise<void>} close
 */

/** @returns {Promise<Adapter>} */
export async function createAdapter(name, root, o) {
  const lease = o.lease === undefined ? [] : ['--lease', String(o.lease)];
  const extra = o.workerArgs?.[name] ?? [];
  const workspacesDir = path.join(root, 'workspaces');
  await mkdir(workspacesDir, { recursive: true });
  if (name === 'file') return fileAdapter(root, workspacesDir, [...lease, ...extra]);
  if (name === 'nats') return natsAdapter(root, workspacesDir, [...lease, ...extra]);
  if (name === 'mqtt') return mqttAdapter(root, workspacesDir, [...lease, ...extra]);
  if (name === 'http') return httpAdapter(root, workspacesDir, [...lease, ...extra], o);
  throw new Error(`unknown transport ${name}`);
}

async function fileAdapter(root, workspacesDir, extra) {
  const jobsDir = path.join(root, 'jobs');
  const queueDir = path.join(root, 'queue');
  const seenDir = path.join(root, 'controller-seen');
  for (const d of ['pending', 'results']) await mkdir(path.join(queueDir, d), { recursive: true });
  await mkdir(seenDir, { recursive: true });
  const results = new ResultLog();
  let polling = true;
  let seq = 0;
  // The controller consumes the outbox: it moves each result file away, so a second
  // result for the same job is a new file, counted again.
  const poll = async () => {
    while (polling) {
      const names = await readdir(path.join(queueDir, 'results')).catch(() => []);
      for (const n of names) {
        if (n.startsWith('.') || !n.endsWith('.json')) continue;
        const to = path.join(seenDir, `${n}.${++seq}`);
        try {
          await rename(path.join(queueDir, 'results', n), to);
          const message = JSON.parse(await readFile(to, 'utf8'));
          results.add(typeof message.id === 'string' ? message.id : n.slice(0, -5));
        } catch {
          // Taken meanwhile or not JSON: the next pass sees what is there.
        }
      }
      await sleep(200);
    }
  };
  let poller;
  return {
    name: 'file',
    jobsDir,
    workspacesDir,
    broker: undefined,
    ready: /"msg":"worker started"/,
    worker: (slot) => ({
      command: process.execPath,
      args: [
        BINARIES.file,
        ...['--jobs-dir', jobsDir, '--workspaces-dir', workspacesDir, '--queue-dir', queueDir],
        ...['--id', `chaos-file-${slot}`, ...daemon, ...extra],
      ],
    }),
    results,
    stateDirs: [queueDir],
    processingDir: path.join(queueDir, 'processing'),
    start: async () => {
      poller = poll();
    },
    afterWorkersReady: async () => {},
    submit: async (ids) => {
      for (const id of ids) {
        const tmp = path.join(queueDir, `.${id}.json.tmp`);
        await writeFile(tmp, JSON.stringify({ id }));
        await rename(tmp, path.join(queueDir, 'pending', `${id}.json`));
      }
    },
    afterBrokerRestart: async () => {},
    close: async () => {
      polling = false;
      await poller;
    },
  };
}

async function natsAdapter(root, workspacesDir, extra) {
  const jobsDir = path.join(root, 'jobs');
  const { service, url } = await natsService(path.join(root, 'broker'));
  const results = new ResultLog();
  /** @type {import('@nats-io/transport-node').NatsConnection | undefined} */
  let nc;
  let jsm;
  let js;
  let messages;
  let reader;
  // Results are read from a stream of our own, as a controller that must not miss one
  // would, through an ordered consumer (it re-creates itself after a server restart;
  // the stream sequence drops what a re-created one delivers again).
  const read = async () => {
    const seen = new Set();
    for await (const m of messages) {
      if (seen.has(m.seq)) continue;
      seen.add(m.seq);
      results.add(m.subject.slice('jobs.results.'.length));
    }
  };
  return {
    name: 'nats',
    jobsDir,
    workspacesDir,
    broker: service,
    ready: /"msg":"worker started"/,
    worker: () => ({
      command: process.execPath,
      args: [
        BINARIES.nats,
        ...['--jobs-dir', jobsDir, '--workspaces-dir', workspacesDir, '--url', url],
        // A work-queue stream takes one consumer: every worker shares the durable (the id).
        ...['--id', 'chaos-nats', ...daemon, ...extra],
      ],
    }),
    results,
    stateDirs: [],
    processingDir: undefined,
    start: async () => {
      await service.start();
      nc = await natsConnect({
        servers: url,
        name: 'chaos-controller',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
      jsm = await jetstreamManager(nc);
      js = jetstream(nc);
      await jsm.streams.add({
        name: 'CHAOS_RESULTS',
        subjects: ['jobs.results.>'],
        storage: 'file',
      });
      messages = await (await js.consumers.get('CHAOS_RESULTS')).consume();
      reader = read();
    },
    afterWorkersReady: async () => {
      // The first worker creates the request stream; a request published before it is lost.
      for (;;) {
        try {
          await jsm.streams.info('JOBS');
          return;
        } catch {
          await sleep(200);
        }
      }
    },
    submit: async (ids) => {
      for (const id of ids) {
        for (;;) {
          try {
            await js.publish('jobs.pending', JSON.stringify({ id }), { msgID: `chaos-${id}` });
            break;
          } catch {
            await sleep(250);
          }
        }
      }
    },
    afterBrokerRestart: async () => {},
    close: async () => {
      messages?.stop();
      await reader;
      await nc?.close();
      await service.close();
    },
  };
}

async function mqttAdapter(root, workspacesDir, extra) {
  const jobsDir = path.join(root, 'jobs');
  const { service, url } = await mosquittoService(path.join(root, 'broker'));
  const results = new ResultLog();
  let client;
  return {
    name: 'mqtt',
    jobsDir,
    workspacesDir,
    broker: service,
    ready: /"msg":"MQTT connected and subscribed"/,
    worker: (slot) => ({
      command: process.execPath,
      args: [
        BINARIES.mqtt,
        ...['--jobs-dir', jobsDir, '--workspaces-dir', workspacesDir, '--url', url],
        ...['--topic', '$share/chaos/jobs/pending', '--id', `chaos-mqtt-${slot}`],
        ...daemon,
        ...extra,
      ],
    }),
    results,
    stateDirs: [],
    processingDir: undefined,
    start: async () => {
      await service.start();
      // A persistent session: results published while the broker restarts are kept for us.
      client = await mqtt.connectAsync(url, {
        clientId: `chaos-controller-${process.pid}`,
        clean: false,
        protocolVersion: 4,
        reconnectPeriod: 250,
        connectTimeout: 5_000,
      });
      client.on('message', (topic) => results.add(topic.slice('jobs/results/'.length)));
      client.on('error', () => {});
      await client.subscribeAsync('jobs/results/+', { qos: 1 });
    },
    afterWorkersReady: async () => {},
    submit: async (ids) => {
      for (const id of ids)
        await client.publishAsync('jobs/pending', JSON.stringify({ id }), { qos: 1 });
    },
    afterBrokerRestart: async () => {},
    close: async () => {
      await client?.endAsync(true).catch(() => {});
      await service.close();
    },
  };
}

async function httpAdapter(root, workspacesDir, extra, o) {
  const sharedDir = path.join(root, 'shared');
  const jobsDir = path.join(sharedDir, 'jobs');
  await mkdir(jobsDir, { recursive: true });
  const results = new ResultLog();
  // The backend logs every call with its body: an accepted final status is a result message.
  const onLine = (line) => {
    const m = /^\S+ POST \/api\/agent\/job-status (\d{3}) (\{.*\})$/.exec(line);
    if (!m?.[1].startsWith('2')) return;
    try {
      const body = JSON.parse(m[2]);
      if (FINAL_HTTP.has(body.status)) results.add(body.job_id);
    } catch {}
  };
  const { service, url } = await backendService(path.join(root, 'broker'), {
    bin: BINARIES.backend,
    staleAfterSeconds: o.staleAfter ?? 10,
    onLine,
  });
  let submitted = [];
  const post = async (id) => {
    for (;;) {
      try {
        const res = await fetch(`${url}/api/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ job_id: id, job_name: id }),
        });
        await res.arrayBuffer();
        if (res.status === 201 || res.status === 409) return;
      } catch {}
      await sleep(250);
    }
  };
  return {
    name: 'http',
    jobsDir,
    workspacesDir,
    broker: service,
    ready: /"msg":"worker started"/,
    worker: (slot) => ({
      command: process.execPath,
      args: [
        BINARIES.http,
        ...['--server', url, '--worker-id', `chaos-http-${slot}`, '--shared-dir', sharedDir],
        ...['--workspaces-dir', workspacesDir, '--poll-interval', '0.5'],
        ...['--status-poll-interval', '2', '--heartbeat-interval', '5'],
        ...daemon,
        ...extra,
      ],
    }),
    results,
    stateDirs: [path.join(workspacesDir, '.http-agent')],
    processingDir: undefined,
    start: async () => {
      await service.start();
    },
    afterWorkersReady: async () => {},
    submit: async (ids) => {
      submitted = [...submitted, ...ids];
      for (const id of ids) await post(id);
    },
    // The backend forgot every job: a controller submits again what it has not seen finish.
    afterBrokerRestart: async () => {
      for (const id of submitted) if (!results.has(id)) await post(id);
    },
    close: async () => {
      await service.close();
    },
  };
}
