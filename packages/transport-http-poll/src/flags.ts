import path from 'node:path';
import { defineOptions, type InferOptions, option } from '@jw/options';
import type { HttpPollTransportOptions } from './options.js';

/**
 * The flags of an HTTP polling agent, with the OPEVA job worker agent's env names;
 * `P_` is the app's prefix (`AGENT` gives `AGENT_TOKEN`). Light: loads no transport.
 */
export const httpPollOptions = defineOptions({
  server: option.string({
    flags: '--server <url>',
    env: 'OPEVA_SERVER',
    default: 'http://localhost:8000',
    description: 'backend base URL',
  }),
  sharedDir: option.string({
    flags: '--shared-dir <dir>',
    env: 'OPEVA_SHARED_DIR',
    default: '/opt/opeva_shared_data',
    description: 'the mounted shared drive; job dirs are {shared dir}/jobs/{job_id}',
  }),
  pollInterval: option.duration({
    flags: '--poll-interval <duration>',
    env: 'POLL_INTERVAL',
    unit: 's',
    min: 1,
    default: '5',
    description: 'wait between polls when the backend has no job (seconds, or 500ms)',
  }),
  heartbeatInterval: option.duration({
    flags: '--heartbeat-interval <duration>',
    env: 'WORKER_HEARTBEAT_INTERVAL',
    unit: 's',
    default: '30',
    description: 'heartbeat interval (seconds; 0 = no heartbeats)',
  }),
  statusPollInterval: option.duration({
    flags: '--status-poll-interval <duration>',
    env: 'STATUS_POLL_INTERVAL',
    unit: 's',
    default: '10',
    description:
      'while a job runs: how often to check its backend status and re-post running (seconds; 0 = never)',
  }),
  exitAfterJob: option.flag({
    flags: '--exit-after-job',
    env: 'WORKER_EXIT_AFTER_JOB',
    description: 'exit after one job (default: keep polling)',
  }),
  command: option.string({
    flags: '--command <template>',
    env: 'P_COMMAND',
    description:
      'command run when the backend sends none; {job_id} {job_name} {config_path} {shared_dir} are filled in, shell-quoted (without it: the job dir’s job.json)',
  }),
  token: option.string({
    flags: '--token <token>',
    env: 'P_TOKEN',
    secret: true,
    description: 'bearer token sent as Authorization on every call',
  }),
  stateDir: option.string({
    flags: '--state-dir <dir>',
    env: 'P_STATE_DIR',
    description:
      'where final statuses wait while the backend is unreachable (default: {workspaces dir}/.http-agent/{worker id})',
  }),
  requestTimeout: option.duration({
    flags: '--request-timeout <duration>',
    env: 'P_REQUEST_TIMEOUT',
    unit: 's',
    min: 1,
    default: '30',
    description: 'time limit of one call to the backend (seconds)',
  }),
  maxBackoff: option.duration({
    flags: '--max-backoff <duration>',
    env: 'P_MAX_BACKOFF',
    unit: 's',
    min: 1,
    default: '60',
    description: 'longest wait between tries after backend failures (seconds)',
  }),
});

export type HttpPollOptionValues = InferOptions<typeof httpPollOptions>;

/** Job dirs are `{shared dir}/jobs/{job_id}`, as the old agent had them. */
export function httpPollJobsDir(o: HttpPollOptionValues): string {
  return path.join(path.resolve(o.sharedDir), 'jobs');
}

/** The transport settings of parsed `httpPollOptions`, plus what only the app knows. */
export function httpPollTransportOptions(
  o: HttpPollOptionValues,
  app: { workspacesDir: string; workerId: string; version: string },
): HttpPollTransportOptions {
  const ownStateDir = path.join(
    app.workspacesDir,
    '.http-agent',
    app.workerId.replace(/[^\w.-]/g, '_'),
  );
  return {
    server: o.server,
    sharedDir: path.resolve(o.sharedDir),
    stateDir: path.resolve(o.stateDir ?? ownStateDir),
    pollIntervalMs: o.pollInterval,
    heartbeatIntervalMs: o.heartbeatInterval,
    statusPollIntervalMs: o.statusPollInterval,
    requestTimeoutMs: o.requestTimeout,
    retryMaxMs: o.maxBackoff,
    commandTemplate: o.command,
    token: o.token,
    version: app.version,
  };
}
