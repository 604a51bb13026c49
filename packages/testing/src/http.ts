import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What a faulty server answers instead of its handler. */
export type HttpFault =
  | { status: number; body?: string; contentType?: string }
  /** Never answers (the client times out). */
  | { hang: true }
  /** Drops the connection without an answer. */
  | { destroy: true };

export interface FaultyHttpServer {
  readonly url: string;
  readonly port: number;
  /** Decides per request whether to answer with a fault; undefined lets the handler answer. */
  fault: ((req: IncomingMessage) => HttpFault | undefined) | undefined;
  /** Requests answered with a fault, in order. */
  readonly faulted: { method: string; path: string; fault: HttpFault }[];
  /** Closes the port (connections are refused) and drops open connections. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

/**
 * An HTTP server on a free port around `handler` that a test can break on
 * purpose: answer 500s or garbage, hang, drop connections, or go away and come
 * back on the same port.
 */
export async function startFaultyHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<FaultyHttpServer> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const faulted: FaultyHttpServer['faulted'] = [];
  const api: FaultyHttpServer = {
    fault: undefined,
    faulted,
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    async start() {
      if (server) return;
      const next = createServer((req, res) => {
        const fault = api.fault?.(req);
        if (!fault) return handler(req, res);
        faulted.push({ method: req.method ?? 'GET', path: req.url ?? '/', fault });
        req.resume();
        if ('hang' in fault) return;
        if ('destroy' in fault) return void req.socket.destroy();
        res.writeHead(fault.status, { 'content-type': fault.contentType ?? 'text/plain' });
        res.end(fault.body ?? '');
      });
      next.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        next.once('error', reject);
        next.listen(port, '127.0.0.1', () => resolve());
      });
      port = (next.address() as AddressInfo).port;
      server = next;
    },
    async stop() {
      const current = server;
      if (!current) return;
      server = undefined;
      const closed = new Promise<void>((resolve) => current.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
  await api.start();
  return api;
}
