import type { CgroupParent } from './cgroup.js';
import type { DeadLetterFileOptions } from './dead-letter-file.js';
import type { FreeSpaceLimit, FreeSpaceReader } from './disk-guard.js';
import { ErrorCode, JwError } from './errors.js';
import type { JobEvent } from './events.js';
import { handlerMap } from './handlers/registry.js';
import type { Handlers } from './handlers/types.js';
import type { LimitPolicy } from './limits.js';
import type { Logger } from './logger.js';
import type { ResultMessage } from './manifest.js';
import type { WorkerObserver } from './observer.js';
import { RESULTS_RETRY_DEFAULTS } from './results-retry.js';
import type { RunAs } from './run-as.js';
import type { Transport } from './transport.js';

export interface WorkerOptions {
  transport: Transport;
  jobsDir: string;
  workspacesDir: string;
  /** Default `worker-01`. */
  workerId?: string;
  /** Recorded in manifests. */
  version?: string;
  /** Jobs run at once. Default 1. */
  concurrency?: number;
  /** Jobs to handle before `run()` resolves; 0 keeps going. Default 0. */
  maxJobs?: number;
  /** Resolve `run()` after this long with nothing to do; 0 never. Default 0. */
  idleTimeoutMs?: number;
  /** Job time limit when neither request nor job.json sets one. */
  jobTimeoutMs?: number;
  /** On `stop()`, how long running jobs may go on before they are cancelled and given back. Default 30 s. */
  stopGraceMs?: number;
  /** SIGTERM → SIGKILL grace for a step's process group. Default 5 s. */
  killGraceMs?: number;
  /** Claim lease (SPEC 6). Default 30 s. */
  leaseMs?: number;
  /** Base env for steps. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** More env names never passed to steps (besides `*_PASSWORD`, `*_TOKEN`, `*_SECRET`, `*_KEY`). */
  secretEnv?: readonly string[];
  /**
   * Handlers for `uses` steps: `defineHandler` results, or a record from `uses` name to a
   * handler or a bare function. The built-ins are always there; one of these with a
   * built-in's name replaces it.
   */
  handlers?: Handlers;
  /** Step limit defaults and bounds (SPEC 3). Default: none. */
  limits?: LimitPolicy;
  /** Run shell steps as this user (`--run-as`). */
  runAs?: RunAs;
  /** Run each shell step in its own cgroup under this one, checked by `openCgroupParent`. */
  cgroup?: CgroupParent;
  logger?: Logger;
  maxRequestBytes?: number;
  /** Tries of a write to a job's results/ before the job is dead-lettered as RESULTS_UNWRITABLE. Default 3. */
  resultsRetries?: number;
  /** Wait before the second try; doubles for each further one. Default 20 s (3 tries: about a minute). */
  resultsBackoffMs?: number;
  /**
   * This many jobs in a row whose results/ could not be written make `run()` fail with
   * RESULTS_UNWRITABLE (a worker fault, SPEC 10). Default 3. A run that ends with every job
   * so failed fails the same way.
   */
  resultsFaultAfter?: number;
  /** While the workspaces dir cannot be written, how often it is checked again. Default 10 s. */
  recheckMs?: number;
  /** Also append each dead letter to this file (JSON lines, rotated). Off when not given. */
  deadLetterFile?: Omit<DeadLetterFileOptions, 'logger'>;
  /**
   * Disk guard: below this much free space on the workspaces filesystem no work is taken
   * (deliveries are given back) until there is room. Off when not given.
   */
  minFreeSpace?: FreeSpaceLimit;
  /** How often the free space is read while the worker waits for work or for room. Default 10 s. */
  diskCheckMs?: number;
  /** Reads the free space (a seam for tests). Default `statfs`. */
  freeSpaceReader?: FreeSpaceReader;
  /** Told what the worker does (metrics, traces); see `WorkerObserver`. */
  observers?: readonly WorkerObserver[];
}

export type StopCause = 'max-jobs' | 'idle' | 'stopped' | 'ended';

export interface WorkerSummary {
  /** Deliveries that ended with a published result (run or replayed). */
  handled: number;
  rejected: number;
  reason: StopCause;
  results: ResultMessage[];
}

export interface WorkerEvents {
  /** A job's state changed. */
  event: [JobEvent];
  /** A result was handed to the transport. */
  result: [ResultMessage];
  /** A request was refused as bad. */
  rejected: [JwError];
  /** The transport is up and the jobs and workspaces dirs checked: work is taken from now on. */
  started: [];
}

export const WORKER_DEFAULTS = {
  workerId: 'worker-01',
  concurrency: 1,
  maxJobs: 0,
  idleTimeoutMs: 0,
  stopGraceMs: 30_000,
  killGraceMs: 5_000,
  leaseMs: 30_000,
  ...RESULTS_RETRY_DEFAULTS,
  resultsFaultAfter: 3,
  recheckMs: 10_000,
  diskCheckMs: 10_000,
} as const;

/** Worker options with every default filled in. */
export type ResolvedWorkerOptions = Required<Pick<WorkerOptions, keyof typeof WORKER_DEFAULTS>> &
  WorkerOptions;

/** Fills in the defaults and checks the numbers; BAD_CONFIG when one is out of range. */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  const o: ResolvedWorkerOptions = { ...WORKER_DEFAULTS, ...options };
  // An option passed as undefined keeps its default.
  for (const [name, value] of Object.entries(WORKER_DEFAULTS)) {
    const loose = o as unknown as Record<string, unknown>;
    if (loose[name] === undefined) loose[name] = value;
  }
  if (!(o.concurrency >= 1))
    throw new JwError(ErrorCode.BAD_CONFIG, 'concurrency must be at least 1');
  if (!(o.maxJobs >= 0)) throw new JwError(ErrorCode.BAD_CONFIG, 'maxJobs must be 0 or more');
  // Bad or doubled handlers are a fault of the worker's code: found at start, not by a job.
  handlerMap(o.handlers);
  return o;
}
