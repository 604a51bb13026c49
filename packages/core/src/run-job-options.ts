import type { CgroupParent } from './cgroup.js';
import type { ClaimAttempt } from './claim.js';
import type { JobEvent } from './events.js';
import type { Handlers } from './handlers/types.js';
import type { LimitPolicy } from './limits.js';
import type { WorkerInfo } from './manifest.js';
import type { WorkerObserver } from './observer.js';
import type { ResultsRetryOptions } from './results-retry.js';
import type { RunAs } from './run-as.js';

export interface RunJobOptions extends ResultsRetryOptions {
  jobsDir: string;
  workspacesDir: string;
  worker: WorkerInfo;
  /** Claim lease (SPEC 6). */
  leaseMs: number;
  /** SIGTERM → SIGKILL grace for a step's process group. */
  killGraceMs: number;
  /** Job time limit when neither the request nor job.json sets one. */
  defaultTimeoutMs?: number;
  /** Base env for steps (secrets are removed). */
  env: NodeJS.ProcessEnv;
  /** More env names to keep from steps (the transport's credentials). */
  secretEnv?: readonly string[];
  /** The worker's handlers for `uses` steps; the built-ins are always there. */
  handlers?: Handlers;
  /** The worker's limit defaults and bounds (SPEC 3). Default: none. */
  limits?: LimitPolicy;
  /** Run shell steps as this user (`--run-as`). */
  runAs?: RunAs;
  /** Run each shell step in its own cgroup under this one (`--cgroup-parent`). */
  cgroup?: CgroupParent;
  /** Abort with reason 'cancel' (→ cancelled) or 'shutdown' (→ given back). */
  signal?: AbortSignal;
  /** A claim taken before the request reached the worker (a recovered job): run under it. */
  claim?: Extract<ClaimAttempt, { kind: 'claimed' }>;
  /** Called once the claim exists on the drive, before anything runs (SPEC 6: claim before ack). */
  onClaimed?: () => void | Promise<void>;
  onEvent?: (event: JobEvent) => void;
  stageConcurrency?: number;
  /** Told of the attempt, its phases and steps (metrics, traces). */
  observers?: readonly WorkerObserver[];
  /** Progress events of a job at most this often; a step's last one is always sent. Default 500 ms. */
  progressIntervalMs?: number;
}
