// "The limit" of a trivial job on each transport: one round trip over the same private
// broker (or folders) with a spawn of `sh -c true` on the far side. Nothing a worker does
// can be faster than that.
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { onCleanup } from './util.mjs';

export const shTrue = () =>
  new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', resolve);
  });

/** Request → spawn → reply over core NATS, client and responder on their own connections. */
export async function natsLimit(url) {
  const responder = await connect({ servers: url, noDelay: true });
  const client = await connect({ servers: url, noDelay: true });
  onCleanup(() => Promise.all([responder.close(), client.close()]));
  responder.subscribe('bench.limit', {
    callback: (_err, m) => void shTrue().then(() => m.respond('done')),
  });
  await responder.flush();
  return async () => {
    const t = performance.now();
    await client.request('bench.limit', 'go', { timeout: 30_000 });
    return performance.now() - t;
  };
}

/** Publish → spawn → publish back over MQTT QoS 1, as the worker's request and result go. */
export async function mqttLimit(url) {
  const responder = await mqtt.connectAsync(url, { protocolVersion: 5 });
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  onCleanup(() => Promise.all([responder.endAsync(), client.endAsync()]));
  responder.on(
    'message',
    (_topic, payload) =>
      void shTrue().then(() =>
        responder.publish(`bench/limit/done/${payload}`, 'done', { qos: 1 }),
      ),
  );
  await responder.subscribeAsync('bench/limit/go', { qos: 1 });
  await client.subscribeAsync('bench/limit/done/+', { qos: 1 });
  let n = 0;
  return async () => {
    const id = String(n++);
    const done = new Promise((resolve) => {
      const on = (topic) => {
        if (topic === `bench/limit/done/${id}`) {
          client.off('message', on);
          resolve();
        }
      };
      client.on('message', on);
    });
    const t = performance.now();
    await client.publishAsync('bench/limit/go', id, { qos: 1 });
    await done;
    return performance.now() - t;
  };
}

/** A file renamed into a watched folder → spawn → a reply renamed into another watched folder. */
export async function fileLimit(root) {
  const inbox = path.join(root, 'limit-in');
  const outbox = path.join(root, 'limit-out');
  await mkdir(inbox, { recursive: true });
  await mkdir(outbox, { recursive: true });
  const inWatch = watch(inbox, (_e, name) => {
    if (!name?.endsWith('.json')) return;
    const file = path.join(inbox, name);
    void readFile(file, 'utf8')
      .then(async () => {
        await rm(file);
        await shTrue();
        await writeFile(path.join(outbox, `.${name}`), '{"status":"success"}');
        await rename(path.join(outbox, `.${name}`), path.join(outbox, name));
      })
      .catch(() => {});
  });
  const waiters = new Map();
  const outWatch = watch(outbox, (_e, name) => {
    if (name && !name.startsWith('.')) waiters.get(name)?.();
  });
  onCleanup(async () => {
    inWatch.close();
    outWatch.close();
  });
  let n = 0;
  return async () => {
    const name = `r${n++}.json`;
    const done = new Promise((resolve) => waiters.set(name, resolve));
    const t = performance.now();
    await writeFile(path.join(root, name), '{}');
    await rename(path.join(root, name), path.join(inbox, name));
    await done;
    waiters.delete(name);
    return performance.now() - t;
  };
}
