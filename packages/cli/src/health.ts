import http from 'node:http';
import type { Worker } from '@jw/core';
import type { WorkerMetrics } from './metrics.js';

/** GET /healthz (alive), /readyz (taking work) and /metrics (Prometheus), for probes and scrapes. */
export async function startHealthServer(
  port: number,
  worker: Worker,
  ready: () => boolean,
  metrics?: Pick<WorkerMetrics, 'render'>,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/metrics' && metrics) {
      metrics.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
      return;
    }
    const body = { status: 'ok', worker: worker.info.id, activeJobs: worker.activeJobs() };
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } else if (req.url === '/readyz') {
      const ok = ready();
      const state = worker.readiness();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          ...body,
          status: ok ? 'ok' : 'not ready',
          ...(ok ? {} : { reason: state.ready ? 'stopping' : state.reason }),
        }),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, resolve);
  });
  server.unref();
  return server;
}
