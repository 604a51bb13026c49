import { parseArgs } from 'node:util';
import { startReferenceBackend } from './server.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', short: 'p', default: process.env.BACKEND_PORT ?? '8000' },
    host: { type: 'string', default: process.env.BACKEND_HOST ?? '127.0.0.1' },
    token: { type: 'string', default: process.env.AGENT_TOKEN },
    'stale-after': { type: 'string', default: process.env.BACKEND_STALE_AFTER ?? '0' },
    quiet: { type: 'boolean', short: 'q', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(`Usage: jw-reference-backend [--port 8000] [--host 127.0.0.1] [--token T] [--stale-after S] [--quiet]

The reference backend of the jw HTTP agent: an in-memory job queue that speaks
the agent protocol, with POST /api/jobs, GET /api/jobs[/{id}],
POST /api/jobs/{id}/stop, POST /api/jobs/{id}/cancel and GET /api/workers.
--stale-after S queues a handed-out job again when its agent has not posted
for S seconds (0 = never). Env: BACKEND_PORT, BACKEND_HOST, AGENT_TOKEN,
BACKEND_STALE_AFTER.
`);
  process.exit(0);
}

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`bad --port ${values.port}\n`);
  process.exit(2);
}

const staleAfter = Number(values['stale-after']);
if (!(staleAfter >= 0)) {
  process.stderr.write(`bad --stale-after ${values['stale-after']}\n`);
  process.exit(2);
}
const backend = await startReferenceBackend({
  port,
  host: values.host,
  token: values.token,
  staleAfterMs: staleAfter * 1000,
});
if (!values.quiet) {
  backend.events.on('request', (r) => {
    process.stdout.write(
      `${r.at} ${r.method} ${r.path} ${r.status}${r.body === undefined ? '' : ` ${JSON.stringify(r.body)}`}\n`,
    );
  });
}
process.stdout.write(`reference backend listening on ${backend.url}\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void backend.close().then(() => process.exit(0)));
}
