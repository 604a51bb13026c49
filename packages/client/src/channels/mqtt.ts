import { randomBytes } from 'node:crypto';
import type { JobEvent, ResultMessage } from '@jw/core';
import { resolveMqttOptions } from '@jw/transport-mqtt';
import mqtt, { type MqttClient } from 'mqtt';
import { type Channel, EventStream, type JobWatch, sleep } from '../channel.js';
import { ClientError, connectionHint, redact } from '../errors.js';
import { workerStatusOf } from './worker-status.js';

function json<T>(payload: Buffer): T | undefined {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Connects once; a broker that is not there fails at once instead of being retried for ever. */
function connectClient(url: URL, label: string): Promise<MqttClient> {
  const client = mqtt.connect(`${url.protocol}//${url.host}`, {
    clientId: `jw-client-${randomBytes(4).toString('hex')}`,
    clean: true,
    protocolVersion: 5,
    connectTimeout: 10_000,
    reconnectPeriod: 1_000,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  });
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      client.removeAllListeners();
      client.end(true);
      reject(
        new ClientError(
          `cannot connect to ${label}: ${error.message}`,
          connectionHint(error, 'the MQTT broker', label) ?? 'wrong --via?',
          { cause: error },
        ),
      );
    };
    client.once('connect', () => {
      client.off('error', fail);
      // Later errors (a broker restart) are retried by the client; they must not crash us.
      client.on('error', () => {});
      resolve(client);
    });
    client.once('error', fail);
    client.once('close', () => {
      if (!client.connected) fail(new Error('connection refused or closed'));
    });
  });
}

/**
 * MQTT (SPEC 7): requests QoS 1 on `jobs/pending` (`?topic=` to change), results on
 * `jobs/results/{id}`, progress on `jobs/progress/{id}`, cancels on `jobs/cancel/{id}`,
 * the workers' retained status on `workers/+/status`.
 */
export async function mqttChannel(url: URL): Promise<Channel> {
  const q = url.searchParams;
  const label = redact(`${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}`);
  let o: ReturnType<typeof resolveMqttOptions>;
  try {
    o = resolveMqttOptions({
      url: `${url.protocol}//${url.host}`,
      ...(q.get('topic') ? { topic: q.get('topic')! } : {}),
      topics: Object.fromEntries(
        ['results', 'progress', 'cancel', 'workers']
          .filter((k) => q.get(k))
          .map((k) => [k, q.get(k)!]),
      ),
    });
  } catch (error) {
    throw new ClientError((error as Error).message, 'fix the query of --via');
  }
  if (/[#+]/.test(o.topic) || o.topic.startsWith('$')) {
    throw new ClientError(
      `request topic ${o.topic} is a filter, not a topic to publish to`,
      'give the plain topic, e.g. ?topic=jobs/pending for workers on $share/g/jobs/pending',
    );
  }
  const client = await connectClient(url, label);
  const handlers = new Map<string, (payload: Buffer) => void>();
  client.on('message', (topic, payload) => handlers.get(topic)?.(payload));

  return {
    kind: 'mqtt',
    label,
    async watch(id): Promise<JobWatch> {
      const events = new EventStream<JobEvent>();
      const resultTopic = `${o.topics.results}/${id}`;
      const progressTopic = `${o.topics.progress}/${id}`;
      let settle!: { resolve: (r: ResultMessage) => void; reject: (e: Error) => void };
      const result = new Promise<ResultMessage>((resolve, reject) => {
        settle = { resolve, reject };
      });
      handlers.set(resultTopic, (payload) => {
        const message = json<ResultMessage>(payload);
        if (message?.id === id) settle.resolve(message);
      });
      handlers.set(progressTopic, (payload) => {
        const event = json<JobEvent>(payload);
        if (event && typeof event.state === 'string') events.push(event);
      });
      // SUBACK before the request goes out: the result cannot pass us by.
      await client.subscribeAsync({ [resultTopic]: { qos: 1 }, [progressTopic]: { qos: 0 } });
      const close = async () => {
        handlers.delete(resultTopic);
        handlers.delete(progressTopic);
        events.end();
        settle.reject(new ClientError(`stopped waiting for the result of ${id}`));
        if (client.connected)
          await client.unsubscribeAsync([resultTopic, progressTopic]).catch(() => {});
      };
      result.then(
        () => void close(),
        () => {},
      );
      return { result, events, close };
    },
    async send(request) {
      // QoS 1: resolves on the broker's PUBACK.
      await client.publishAsync(o.topic, JSON.stringify(request), { qos: 1 });
    },
    async cancel(id, reason) {
      await client.publishAsync(
        `${o.topics.cancel}/${id}`,
        JSON.stringify(reason ? { reason } : {}),
        { qos: 1 },
      );
      return { sent: true, detail: 'MQTT cancels are not answered: follow the job to see it end' };
    },
    async workers(options = {}) {
      type Status = Record<string, unknown>;
      const filter = `${o.topics.workers}/+/status`;
      const seen = new Map<string, Status>();
      const marker = `jw/client/${randomBytes(6).toString('hex')}`;
      const prefix = `${o.topics.workers}/`;
      let markerSeen!: () => void;
      const markerArrived = new Promise<void>((resolve) => {
        markerSeen = resolve;
      });
      const onMessage = (topic: string, payload: Buffer) => {
        if (topic === marker) return markerSeen();
        if (!topic.startsWith(prefix) || !topic.endsWith('/status')) return;
        const id = topic.slice(prefix.length, -'/status'.length);
        const status = json<Status>(payload);
        if (status && !id.includes('/')) seen.set(id, status);
      };
      client.on('message', onMessage);
      try {
        await client.subscribeAsync({ [filter]: { qos: 1 }, [marker]: { qos: 1 } });
        // The broker sends the retained statuses before our own later message comes back.
        await client.publishAsync(marker, 'x', { qos: 1 });
        const abort = new AbortController();
        await Promise.race([markerArrived, sleep(options.listenMs ?? 3_000, abort.signal)]);
        abort.abort();
        await client.unsubscribeAsync([filter, marker]).catch(() => {});
      } finally {
        client.off('message', onMessage);
      }
      return [...seen].map(([id, s]) => workerStatusOf(s, { workerId: id, transport: 'mqtt' }));
    },
    async close() {
      await client.endAsync().catch(() => client.end(true));
    },
  };
}
