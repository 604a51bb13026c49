// The worker binaries as a controller sees them: spawn one, hand it requests over its
// transport, wait for result messages.
import { watch } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { bin, onCleanup, spawnChild, workerEnv } from './util.mjs';

/** Result messages by job id; `wait(id)` may be called before or after it arrived. */
function resultBox() {
  const arrived = new Map();
  const waiting = new Map();
  return {
    put(id, result) {
      const w = waiting.get(id);
      if (w) {
        waiting.delete(id);
        w(result);
      } else arrived.set(id, result);
    },
    wait(id, timeoutMs = 120_000) {
      if (arrived.has(id)) {
        const r = arrived.get(id);
        arrived.delete(id);
        return Promise.resolve(r);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`no result for ${id} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
      });
    },
  };
}

/** What every transport offers the bench. */
const common = (dir, id) => ['-j', path.join(dir, 'jobs'), '-w', path.join(dir, 'ws'), '-i', id];

/**
 * A work-queue stream takes one consumer, so each NATS worker (by id) gets its own
 * stream and subjects.
 */
const natsPrefix = (id) => id.replace(/[^A-Za-z0-9]/g, '_');
const natsFlags = (id) => {
  const p = natsPrefix(id);
  return ['-s', p.toUpperCase(), '-k', `${p}.pending`, '-r', `${p}.results`]
    .concat(['--dead-letter-subject', `${p}.dead`, '--progress-subject', `${p}.progress`])
    .concat(['--cancel-subject', `${p}.cancel`]);
};

export async function natsClient(url, id) {
  const p = natsPrefix(id);
  const nc = await connect({ servers: url, noDelay: true });
  onCleanup(() => nc.close());
  const js = jetstream(nc);
  const box = resultBox();
  nc.subscribe(`${p}.results.>`, {
    callback: (_err, m) => box.put(m.subject.slice(`${p}.results.`.length), m.json()),
  });
  await nc.flush();
  return {
    submit: (request) => js.publish(`${p}.pending`, JSON.stringify(request)),
    result: box.wait,
  };
}

/** `topic`: where requests go (the worker's `-t`); a cold-start worker has its own. */
export async function mqttClient(url, topic = 'jobs/pending') {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  onCleanup(() => client.endAsync());
  const box = resultBox();
  client.on('message', (topic, payload) => {
    if (topic.startsWith('jobs/results/'))
      box.put(topic.slice('jobs/results/'.length), JSON.parse(payload.toString()));
  });
  await client.subscribeAsync('jobs/results/+', { qos: 1 });
  return {
    submit: (request) => client.publishAsync(topic, JSON.stringify(request), { qos: 1 }),
    result: box.wait,
  };
}

export async function fileClient(queue) {
  const box = resultBox();
  const results = path.join(queue, 'results');
  await mkdir(results, { recursive: true });
  const seen = new Set();
  const watcher = watch(results, (_e, name) => {
    if (!name?.endsWith('.json') || seen.has(name)) return;
    void readFile(path.join(results, name), 'utf8')
      .then((text) => {
        const result = JSON.parse(text);
        seen.add(name);
        box.put(result.id, result);
      })
      .catch(() => {}); // not complete yet: the next event reads it
  });
  onCleanup(async () => watcher.close());
  await mkdir(path.join(queue, 'pending'), { recursive: true });
  return {
    async submit(request) {
      // Written beside the inbox, then renamed in: the worker never sees half a file.
      const tmp = path.join(queue, `.${request.id}.json`);
      await writeFile(tmp, JSON.stringify(request));
      await rename(tmp, path.join(queue, 'pending', `${request.id}.json`));
    },
    result: box.wait,
  };
}

/**
 * Spawns a worker binary. `kind`: nats | mqtt | file. `args`: more flags. Resolves once
 * it says it takes work (the file worker says nothing: the caller's warm-up job tells).
 */
export async function startWorker(kind, { url, dir, id, args = [], wait = true }) {
  const flags = {
    nats: [
      'nats-fs-worker',
      ['-u', url, ...common(dir, id), ...natsFlags(id)],
      'listening for jobs',
    ],
    mqtt: ['mqtt-fs-worker', ['-u', url, ...common(dir, id)], 'MQTT connected and subscribed'],
    file: ['file-worker', ['-q', path.join(dir, 'queue'), ...common(dir, id)], null],
  }[kind];
  const [app, base, ready] = flags;
  await mkdir(path.join(dir, 'jobs'), { recursive: true });
  const worker = spawnChild(
    process.execPath,
    [
      ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
      bin(app),
      ...base,
      '--log-level',
      'info',
      ...args,
    ],
    {
      env: workerEnv(),
    },
  );
  if (wait && ready) await worker.waitFor(ready);
  return worker;
}

/** `id`: the worker's, which names its NATS stream. */
export function clientFor(kind, { url, dir, id, topic }) {
  if (kind === 'nats') return natsClient(url, id);
  if (kind === 'mqtt') return mqttClient(url, topic);
  return fileClient(path.join(dir, 'queue'));
}
