import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Spawned, spawnProcess } from '@jw/testing/process';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/main.cjs');

/** The test runner's env without any NATS_* setting, so only what a test gives reaches the worker. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('NATS_') && k !== 'WORKER_ID' && k !== 'JOB_TIMEOUT') env[k] = v;
  }
  return { ...env, LOG_FORMAT: 'json', ...extra };
}

/** Runs the built binary. */
export function startWorker(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Spawned {
  return spawnProcess(process.execPath, [BIN, ...args], {
    env: cleanEnv(options.env),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
}

/** Resolves once the worker's consumer is in place and it waits for work. */
export function ready(worker: Spawned): Promise<string> {
  return worker.waitForOutput('listening for jobs');
}

/** Publishes requests through JetStream, so they are stored before this resolves. */
export async function submit(
  nc: NatsConnection,
  subject: string,
  ...requests: (object | string | Uint8Array)[]
) {
  const js = jetstream(nc);
  for (const r of requests) {
    await js.publish(
      subject,
      typeof r === 'string' || r instanceof Uint8Array ? r : JSON.stringify(r),
    );
  }
}

/** Every message on a subject from now on (the subscription is known to the server on return). */
export async function collect(nc: NatsConnection, subject: string) {
  const messages: Msg[] = [];
  const waiters = new Set<() => void>();
  const sub = nc.subscribe(subject, {
    callback: (_err, m) => {
      messages.push(m);
      for (const w of waiters) w();
    },
  });
  await nc.flush();
  return {
    messages,
    json: <T = Record<string, unknown>>() => messages.map((m) => m.json<T>()),
    /** Resolves when at least `count` messages arrived. */
    waitFor(count: number, timeoutMs = 60_000): Promise<Msg[]> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(messages);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${messages.length} of ${count} messages on ${subject}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => sub.unsubscribe(),
  };
}

export async function consumerState(nc: NatsConnection, stream: string, durable: string) {
  const jsm = await jetstreamManager(nc);
  return jsm.consumers.info(stream, durable);
}

/** Stream and subjects of one test, so tests in a file never share a queue. */
export function queue(name: string) {
  return {
    stream: name.toUpperCase(),
    input: `${name}.pending`,
    output: `${name}.results`,
    dead: `${name}.dead`,
    progress: `${name}.progress`,
    cancel: `${name}.cancel`,
    /** Flags that point a worker at this queue. */
    flags: [
      '--stream',
      name.toUpperCase(),
      '--input-subject',
      `${name}.pending`,
      '--output-subject',
      `${name}.results`,
      '--dead-letter-subject',
      `${name}.dead`,
      '--progress-subject',
      `${name}.progress`,
      '--cancel-subject',
      `${name}.cancel`,
    ],
  };
}
