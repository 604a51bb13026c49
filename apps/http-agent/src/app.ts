import os from 'node:os';
import { runWorkerApp } from '@jw/cli/app';
import {
  httpPollJobsDir,
  httpPollOptions,
  httpPollTransportOptions,
} from '@jw/transport-http-poll/flags';
import pkg from '../package.json' with { type: 'json' };

runWorkerApp({
  name: 'http-agent',
  version: pkg.version,
  description:
    'Run jw jobs handed out by an HTTP backend (drop-in for the OPEVA job worker agent).',
  transportName: 'http-poll',
  envPrefix: 'AGENT',
  // The jobs dir is always {shared dir}/jobs, as the old agent had it.
  common: {
    jobsDir: false,
    id: { flags: '--worker-id <id>', env: 'WORKER_ID', default: os.hostname() },
  },
  options: httpPollOptions,
  workerOptions: ({ options }) => ({
    jobsDir: httpPollJobsDir(options),
    ...(options.exitAfterJob ? { maxJobs: 1 } : {}),
  }),
  // Loaded only to run: --help and --version answer without the transport.
  createTransport: async ({ options, common }) => {
    const { createHttpPollTransport } = await import('@jw/transport-http-poll');
    const { workspacesDir, id: workerId } = common;
    return createHttpPollTransport(
      httpPollTransportOptions(options, { workspacesDir, workerId, version: pkg.version }),
    );
  },
});
