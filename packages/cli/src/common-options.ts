import os from 'node:os';
import { GUARD_OPTIONS } from './guard-options.js';
import type { OptionSpec } from './options.js';

/** The settings every worker binary has (SPEC 10). `P_` is replaced by the app's env prefix. */
export const COMMON_OPTIONS = {
  jobsDir: {
    flags: '-j, --jobs-dir <dir>',
    env: 'P_JOBS_DIR',
    default: './jobs',
    description: 'root of job sources (shared drive)',
  },
  workspacesDir: {
    flags: '-w, --workspaces-dir <dir>',
    env: 'P_WORKSPACES_DIR',
    default: './workspaces',
    description: 'root of private workspaces (local disk)',
  },
  id: { flags: '-i, --id <id>', env: 'WORKER_ID', default: 'worker-01', description: 'worker id' },
  maxJobs: {
    flags: '--max-jobs <n>',
    env: 'P_MAX_JOBS',
    type: 'int',
    min: 0,
    default: 0,
    description: 'jobs to handle before exiting (0 = keep going)',
  },
  concurrency: {
    flags: '--concurrency <n>',
    env: 'P_CONCURRENCY',
    type: 'int',
    min: 1,
    default: 1,
    description: 'jobs run at once',
  },
  idleTimeout: {
    flags: '--idle-timeout <duration>',
    env: 'P_IDLE_TIMEOUT',
    type: 'duration',
    unit: 's',
    default: '0',
    description: 'exit 0 after this long with nothing to do (seconds, or 30s/5m; 0 = never)',
  },
  timeout: {
    flags: '--timeout <duration>',
    env: 'P_TIMEOUT',
    type: 'duration',
    unit: 'm',
    default: '0',
    description: 'job time limit when the job sets none (minutes, or 90s/2h; 0 = none)',
  },
  gracePeriod: {
    flags: '--grace-period <duration>',
    env: 'P_GRACE_PERIOD',
    type: 'duration',
    unit: 's',
    default: '30',
    description:
      'on SIGTERM/SIGINT, how long running jobs may finish before they are cancelled and given back',
  },
  killGrace: {
    flags: '--kill-grace <duration>',
    env: 'P_KILL_GRACE',
    type: 'duration',
    unit: 's',
    default: '5',
    description: "SIGTERM to SIGKILL delay for a step's process group",
  },
  lease: {
    flags: '--lease <duration>',
    env: 'P_LEASE',
    type: 'duration',
    unit: 's',
    default: '30',
    min: 1000,
    description: 'claim lease; a dead worker’s job is taken over after it',
  },
  resultsRetries: {
    flags: '--results-retries <n>',
    env: 'P_RESULTS_RETRIES',
    type: 'int',
    min: 1,
    default: 3,
    description:
      "tries of a write to a job's results/ before the job is dead-lettered as RESULTS_UNWRITABLE",
  },
  resultsBackoff: {
    flags: '--results-backoff <duration>',
    env: 'P_RESULTS_BACKOFF',
    type: 'duration',
    unit: 's',
    default: '20',
    description: 'wait before the second try of a results/ write; it doubles for each further one',
  },
  dryRun: {
    flags: '--dry-run',
    type: 'boolean',
    default: false,
    description: 'run ./test-payload.json without any broker, print the result',
  },
  logFormat: {
    flags: '--log-format <format>',
    env: 'LOG_FORMAT',
    choices: ['json', 'pretty'],
    description: 'log format (default: pretty on a terminal, json otherwise)',
  },
  logLevel: {
    flags: '--log-level <level>',
    env: 'LOG_LEVEL',
    default: 'info',
    description: 'trace, debug, info, warn, error, fatal, silent',
  },
  healthPort: {
    flags: '--health-port <port>',
    env: 'P_HEALTH_PORT',
    type: 'int',
    min: 0,
    description: 'serve GET /healthz, /readyz and /metrics on this port',
  },
  ...GUARD_OPTIONS,
} satisfies Record<string, OptionSpec>;

export type CommonKey = keyof typeof COMMON_OPTIONS;

/** Resolved common settings, handed to an app's createTransport. */
export interface CommonSettings {
  jobsDir: string;
  workspacesDir: string;
  id: string;
  maxJobs: number;
  concurrency: number;
  idleTimeoutMs: number;
  timeoutMs: number;
  gracePeriodMs: number;
  killGraceMs: number;
  leaseMs: number;
  resultsRetries: number;
  resultsBackoffMs: number;
  dryRun: boolean;
  logFormat: 'json' | 'pretty';
  logLevel: string;
  healthPort: number | undefined;
  hostname: string;
}

export const HOSTNAME = os.hostname();
