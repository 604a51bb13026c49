import { runWorkerApp } from '@jw/cli/app';
import { natsOptions, natsTransportOptions } from '@jw/transport-nats/flags';
import pkg from '../package.json' with { type: 'json' };

runWorkerApp({
  name: 'nats-fs-worker',
  version: pkg.version,
  description: 'Run jw jobs signalled over NATS JetStream (drop-in for the NATS job worker).',
  transportName: 'nats',
  envPrefix: 'NATS',
  // One-shot as before: one job, then exit (a supervisor restarts it for a fresh environment).
  defaults: { maxJobs: 1, idleTimeout: '60' },
  common: {
    timeout: { flags: '-o, --timeout <minutes>', env: 'JOB_TIMEOUT', default: '30' },
  },
  options: natsOptions,
  // Loaded only to run: --help and --version answer without the NATS client.
  createTransport: async ({ options, common }) => {
    const { createNatsTransport } = await import('@jw/transport-nats');
    return createNatsTransport(
      natsTransportOptions(options, {
        version: pkg.version,
        connectionName: `nats-fs-worker ${common.id} ${common.hostname}:${process.pid}`,
      }),
    );
  },
});
