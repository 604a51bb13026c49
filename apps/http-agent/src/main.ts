import os from 'node:os';
import path from 'node:path';
import { runWorkerApp } from '@jw/cli';
import { createHttpPollTransport, TOKEN_ENV } from '@jw/transport-http-poll';
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
  options: {
    server: {
      flags: '--server <url>',
      env: 'OPEVA_SERVER',
      default: 'http://localhost:8000',
      description: 'backend base URL',
    },
    sharedDir: {
      flags: '--shared-dir <dir>',
      env: 'OPEVA_SHARED_DIR',
      default: '/opt/opeva_shared_data',
      description: 'the mounted shared drive; job dirs are {shared dir}/jobs/{job_id}',
    },
    pollInterval: {
      flags: '--poll-interval <duration>',
      env: 'POLL_INTERVAL',
      type: 'duration',
      unit: 's',
      min: 1,
      default: '5',
      description: 'wait between polls when the backend has no job (seconds, or 500ms)',
    },
    heartbeatInterval: {
      flags: '--heartbeat-interval <duration>',
      env: 'WORKER_HEARTBEAT_INTERVAL',
      type: 'duration',
      unit: 's',
      default: '30',
      description: 'heartbeat interval (seconds; 0 = no heartbeats)',
    },
    statusPollInterval: {
      flags: '--status-poll-interval <duration>',
      env: 'STATUS_POLL_INTERVAL',
      type: 'duration',
      unit: 's',
      default: '10',
      description:
        'while a job runs: how often to check its backend status and re-post running (seconds; 0 = never)',
    },
    exitAfterJob: {
      flags: '--exit-after-job',
      env: 'WORKER_EXIT_AFTER_JOB',
      type: 'boolean',
      default: false,
      description: 'exit after one job (default: keep polling)',
    },
    command: {
      flags: '--command <template>',
      env: 'AGENT_COMMAND',
      description:
        'command run when the backend sends none; {job_id} {job_name} {config_path} {shared_dir} are filled in, shell-quoted (without it: the job dir’s job.json)',
    },
    token: {
      flags: '--token <token>',
      env: TOKEN_ENV,
      secret: true,
      description: 'bearer token sent as Authorization on every call',
    },
    stateDir: {
      flags: '--state-dir <dir>',
      env: 'AGENT_STATE_DIR',
      description:
        'where final statuses wait while the backend is unreachable (default: {workspaces dir}/.http-agent/{worker id})',
    },
    requestTimeout: {
      flags: '--request-timeout <duration>',
      env: 'AGENT_REQUEST_TIMEOUT',
      type: 'duration',
      unit: 's',
      min: 1,
      default: '30',
      description: 'time limit of one call to the backend (seconds)',
    },
    maxBackoff: {
      flags: '--max-backoff <duration>',
      env: 'AGENT_MAX_BACKOFF',
      type: 'duration',
      unit: 's',
      min: 1,
      default: '60',
      description: 'longest wait between tries after backend failures (seconds)',
    },
  },
  workerOptions: ({ options }) => ({
    jobsDir: path.join(path.resolve(options.sharedDir as string), 'jobs'),
    ...(options.exitAfterJob ? { maxJobs: 1 } : {}),
  }),
  createTransport: ({ options, common }) => {
    const transport = createHttpPollTransport({
      server: options.server as string,
      sharedDir: path.resolve(options.sharedDir as string),
      stateDir: path.resolve(
        (options.stateDir as string | undefined) ??
          path.join(common.workspacesDir, '.http-agent', common.id.replace(/[^\w.-]/g, '_')),
      ),
      pollIntervalMs: options.pollInterval as number,
      heartbeatIntervalMs: options.heartbeatInterval as number,
      statusPollIntervalMs: options.statusPollInterval as number,
      requestTimeoutMs: options.requestTimeout as number,
      retryMaxMs: options.maxBackoff as number,
      commandTemplate: options.command as string | undefined,
      token: options.token as string | undefined,
      version: pkg.version,
    });
    return transport;
  },
});
