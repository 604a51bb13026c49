import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { JobQueue, QueueError } from './job-queue.js';

const MAX_BODY_BYTES = 1024 * 1024;

/** One handled request, as the `request` event gives it. */
export interface BackendRequest {
  method: string;
  path: string;
  /** The JSON body, when there was one. */
  body: unknown;
  /** The HTTP status it was answered with. */
  status: number;
  at: string;
}

export interface BackendHandlerOptions {
  queue?: JobQueue;
  /** For a queue made here: see JobQueueOptions. */
  staleAfterMs?: number;
  /** When set, every call must carry `Authorization: Bearer {token}`. */
  token?: string | undefined;
}

export type BackendHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  readonly queue: JobQueue;
  /** Emits `request` (BackendRequest) after each answer. */
  readonly events: EventEmitter<{ request: [BackendRequest] }>;
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The backend side of the agent protocol (SPEC 8) on an in-memory queue, plus a
 * small API to submit, stop, cancel and list jobs. A `node:http` request
 * listener, so it can be mounted in any server.
 */
export function createBackendHandler(options: BackendHandlerOptions = {}): BackendHandler {
  const queue =
    options.queue ??
    new JobQueue(options.staleAfterMs === undefined ? {} : { staleAfterMs: options.staleAfterMs });
  const events = new EventEmitter<{ request: [BackendRequest] }>();

  const route = async (method: string, path: string, body: unknown): Promise<[number, unknown]> => {
    const jobMatch = /^\/api\/jobs\/([^/]+)(?:\/(stop|cancel))?$/.exec(path);
    const statusMatch = /^\/status\/([^/]+)$/.exec(path);
    if (method === 'POST' && path === '/api/agent/next-job') {
      const workerId = (body as { worker_id?: unknown } | null)?.worker_id;
      if (typeof workerId !== 'string' || workerId === '')
        throw new HttpError(400, 'worker_id is required');
      const job = queue.take(workerId);
      if (!job) return [204, undefined];
      return [
        200,
        {
          job_id: job.job_id,
          job_name: job.job_name,
          config_path: job.config_path,
          ...(job.command === undefined ? {} : { command: job.command }),
          ...(job.env === undefined ? {} : { env: job.env }),
        },
      ];
    }
    if (method === 'POST' && path === '/api/agent/job-status')
      return [200, { ok: true, job: queue.report(body) }];
    if (method === 'POST' && path === '/api/agent/heartbeat') {
      const { worker_id, info } = (body ?? {}) as { worker_id?: unknown; info?: unknown };
      if (typeof worker_id !== 'string' || worker_id === '')
        throw new HttpError(400, 'worker_id is required');
      const infoObject =
        typeof info === 'object' && info !== null ? (info as Record<string, unknown>) : {};
      return [200, { ok: true, worker: queue.heartbeat(worker_id, infoObject) }];
    }
    if (method === 'GET' && statusMatch) {
      const job = queue.get(decodeURIComponent(statusMatch[1]!));
      if (!job) throw new HttpError(404, 'unknown job');
      return [200, { status: job.status }];
    }
    if (method === 'POST' && path === '/api/jobs')
      return [201, queue.submit((body ?? {}) as never)];
    if (method === 'GET' && path === '/api/jobs') return [200, queue.list()];
    if (method === 'GET' && path === '/api/workers') return [200, queue.workers()];
    if (jobMatch) {
      const id = decodeURIComponent(jobMatch[1]!);
      if (method === 'GET' && !jobMatch[2]) {
        const job = queue.get(id);
        if (!job) throw new HttpError(404, 'unknown job');
        return [200, job];
      }
      if (method === 'POST' && jobMatch[2] === 'stop') return [200, queue.requestStop(id)];
      if (method === 'POST' && jobMatch[2] === 'cancel') return [200, queue.cancel(id)];
    }
    throw new HttpError(404, `no route ${method} ${path}`);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://backend').pathname;
    let body: unknown;
    const answer = (status: number, value: unknown) => {
      const text = value === undefined ? '' : JSON.stringify(value);
      res.writeHead(status, text ? { 'content-type': 'application/json' } : {});
      res.end(text);
      events.emit('request', { method, path, body, status, at: new Date().toISOString() });
    };
    readBody(req)
      .then(async (text) => {
        if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
          throw new HttpError(401, 'missing or wrong bearer token');
        }
        if (text !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            throw new HttpError(400, 'body is not JSON');
          }
        }
        const [status, value] = await route(method, path, body);
        answer(status, value);
      })
      .catch((error: unknown) => {
        const status =
          error instanceof HttpError
            ? error.status
            : error instanceof QueueError
              ? error.httpStatus
              : 500;
        answer(status, { error: error instanceof Error ? error.message : String(error) });
      });
  };
  return Object.assign(handler, { queue, events });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface ReferenceBackend {
  readonly url: string;
  readonly port: number;
  readonly queue: JobQueue;
  readonly events: BackendHandler['events'];
  readonly server: Server;
  close(): Promise<void>;
}

export interface StartBackendOptions extends BackendHandlerOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
}

/** Starts the reference backend on its own HTTP server. */
export async function startReferenceBackend(
  options: StartBackendOptions = {},
): Promise<ReferenceBackend> {
  const handler = createBackendHandler(options);
  const server = createServer(handler);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    queue: handler.queue,
    events: handler.events,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
