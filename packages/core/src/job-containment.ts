import type { CgroupParent } from './cgroup.js';
import type { Step } from './job-definition.js';
import type { ResolvedJob } from './job-source.js';
import { effectiveLimits, type Limits, NO_LIMITS } from './limits.js';
import { secretValues } from './mask.js';
import type { RunJobOptions } from './run-job-options.js';
import { isSecretName } from './step-env.js';

/** What holds each step of a job in: its limits, which env names are secret, its user. */
export interface JobContainment {
  limitsOf(step: Step): Limits;
  /** Env names the job lists in `"secrets"` (the secret-named ones are secret anyway). */
  secretNames: readonly string[];
  /** Every secret value any step of the job may see: masked in its error texts and records. */
  secrets: readonly string[];
  user?: { uid: number; gid: number };
  /** Each shell step gets its own cgroup under this one. */
  cgroup?: CgroupParent;
}

/**
 * Checked before anything is staged: a step that asks for more than the worker allows
 * makes the whole job a bad job (limits.ts says why it is not clamped).
 */
export function containJob(job: ResolvedJob, options: RunJobOptions): JobContainment {
  const policy = options.limits ?? NO_LIMITS;
  const limits = new Map<number, Limits>();
  for (const step of job.steps) {
    // Handler steps run in the worker's own process: rlimits do not apply to them.
    if (step.run === undefined) continue;
    limits.set(
      step.index,
      effectiveLimits(policy, job.limits, step.limits, `step ${step.index} (${step.name})`),
    );
  }
  const runAs = options.runAs;
  const layers: Record<string, string | undefined>[] = [
    // The worker's own secret-named values never reach a step; a listed name may.
    Object.fromEntries(job.secrets.map((name) => [name, options.env[name]])),
    job.env,
    ...job.steps.map((s) => s.env),
  ];
  const secrets = secretValues(
    layers.flatMap((env) =>
      Object.entries(env)
        .filter(([name]) => isSecretName(name, job.secrets))
        .map(([, value]) => value),
    ),
  );
  return {
    limitsOf: (step) => limits.get(step.index) ?? {},
    secretNames: job.secrets,
    secrets,
    ...(runAs ? { user: { uid: runAs.uid, gid: runAs.gid } } : {}),
    ...(options.cgroup ? { cgroup: options.cgroup } : {}),
  };
}
