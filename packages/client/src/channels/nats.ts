import type { JobEvent, ResultMessage } from '@jw/core';
import { NATS_DEFAULTS, subjectsOf } from '@jw/transport-nats';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { type CancelOutcome, type Channel, EventStream, type JobWatch, sleep } from '../channel.js';
import { ClientError, connectionHint, redact } from '../errors.js';
import { workerStatusOf } from './worker-status.js';

/** Query parameters of a `nats://` via URL, each a setting of the NATS worker (same defaults). */
function settingsOf(url: URL) {
  const q = url.searchParams;
  const flat = q.get('flatResults') ?? q.get('flat');
  return {
    ...NATS_DEFAULTS,
    stream: q.get('stream') ?? NATS_DEFAULTS.stream,
    inputSubject: q.get('inputSubject') ?? q.get('subject') ?? NATS_DEFAULTS.inputSubject,
    outputSubject: q.get('outputSubject') ?? NATS_DEFAULTS.outputSubject,
    flatResults: flat === null ? NATS_DEFAULTS.flatResults : /^(1|true|yes|on)$/i.test(flat),
    progressSubject: q.get('progressSubject') ?? NATS_DEFAULTS.progressSubject,
    cancelSubject: q.get('cancelSubject') ?? NATS_DEFAULTS.cancelSubject,
    statusSubjectPrefix: q.get('statusSubjectPrefix') ?? NATS_DEFAULTS.statusSubjectPrefix,
  };
}

function json<T>(data: Uint8Array): T | undefined {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * NATS JetStream (SPEC 7): requests are published through JetStream on the stream's
 * subject (stored before `send` resolves); result, progress, cancel and heartbeats are
 * plain subjects.
 */
export async function natsChannel(url: URL): Promise<Channel> {
  const settings = settingsOf(url);
  const subjects = subjectsOf(settings);
  const label = redact(`${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}`);
  const auth =
    url.username && url.password
      ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
      : url.username
        ? { token: decodeURIComponent(url.username) }
        : {};
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: `${url.protocol}//${url.host}`,
      name: 'jw-client',
      timeout: 10_000,
      maxReconnectAttempts: -1,
      ...auth,
    });
  } catch (error) {
    throw new ClientError(
      `cannot connect to ${label}: ${(error as Error).message}`,
      connectionHint(error, 'nats-server', label) ?? 'wrong --via?',
      { cause: error },
    );
  }
  const js = jetstream(nc);

  return {
    kind: 'nats',
    label,
    async watch(id): Promise<JobWatch> {
      const events = new EventStream<JobEvent>();
      let settle!: { resolve: (r: ResultMessage) => void; reject: (e: Error) => void };
      const result = new Promise<ResultMessage>((resolve, reject) => {
        settle = { resolve, reject };
      });
      const subs: Subscription[] = [
        nc.subscribe(subjects.result(id), {
          callback: (_error, msg) => {
            const message = json<ResultMessage>(msg.data);
            // On the flat result subject every job's result passes by.
            if (message?.id === id) settle.resolve(message);
          },
        }),
        nc.subscribe(subjects.progress(id), {
          callback: (_error, msg) => {
            const event = json<JobEvent>(msg.data);
            if (event && typeof event.state === 'string') events.push(event);
          },
        }),
      ];
      // The server knows the subscriptions before the request goes out.
      await nc.flush();
      const close = async () => {
        for (const sub of subs) sub.unsubscribe();
        events.end();
        settle.reject(new ClientError(`stopped waiting for the result of ${id}`));
      };
      result.then(
        () => void close(),
        () => {},
      );
      return { result, events, close };
    },
    async send(request) {
      try {
        await js.publish(subjects.input, JSON.stringify(request), { timeout: 10_000 });
      } catch (error) {
        const text = `${(error as { code?: unknown }).code ?? ''} ${(error as Error).message}`;
        // nats.js says "jetstream is not enabled" when no stream answers on the subject.
        const noStream = /no responders|503|no stream|jetstream is not enabled/i.test(text);
        throw new ClientError(
          noStream
            ? `no JetStream stream takes ${subjects.input} on ${label}`
            : `cannot publish the request on ${subjects.input}: ${(error as Error).message}`,
          noStream
            ? `start a nats-fs-worker once (it creates stream ${settings.stream}), fix ?subject= in --via, or run nats-server with -js`
            : 'is the JetStream server healthy? wrong --via?',
          { cause: error },
        );
      }
    },
    async cancel(id, reason): Promise<CancelOutcome> {
      const subject = `${settings.cancelSubject}.${id}`;
      try {
        const answer = await nc.request(subject, JSON.stringify(reason ? { reason } : {}), {
          timeout: 3_000,
        });
        const body = json<{ cancelled?: boolean; workerId?: string }>(answer.data);
        return {
          sent: true,
          confirmed: body?.cancelled === true,
          ...(body?.workerId ? { detail: `cancelled by worker ${body.workerId}` } : {}),
        };
      } catch (error) {
        const none = /no responders|503/i.test(
          `${(error as { code?: unknown }).code ?? ''} ${(error as Error).message}`,
        );
        return {
          sent: true,
          confirmed: false,
          detail: none
            ? 'no worker listens for cancels on this server'
            : 'no worker runs this job now (a job still queued in the stream is not cancelled)',
        };
      }
    },
    async workers(options = {}) {
      const seen = new Map<string, Record<string, unknown>>();
      const sub = nc.subscribe(subjects.status('*'), {
        callback: (_error, msg) => {
          const beat = json<Record<string, unknown>>(msg.data);
          if (typeof beat?.workerId === 'string')
            seen.set(`${beat.workerId}@${beat.hostname}:${beat.pid}`, beat);
        },
      });
      await nc.flush();
      await sleep(options.listenMs ?? NATS_DEFAULTS.heartbeatIntervalMs + 1_000, options.signal);
      sub.unsubscribe();
      return [...seen.values()].map((b) =>
        workerStatusOf(b, { workerId: String(b.workerId), transport: 'nats' }),
      );
    },
    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
