import {
  type CgroupParent,
  checkLimitPolicy,
  type LimitName,
  type LimitPolicy,
  type Limits,
  openCgroupParent,
  type RunAs,
  resolveRunAs,
} from '@jw/core';
import { defaultKey, LIMIT_FLAGS, maxKey } from './containment-options.js';

export interface ContainmentSettings {
  limits: LimitPolicy;
  runAs?: RunAs;
  cgroup?: CgroupParent;
}

/** Checked once at start: BAD_CONFIG (exit 2) for a contradiction or a user it cannot switch to. */
export async function containmentSettings(
  values: Record<string, unknown>,
): Promise<ContainmentSettings> {
  const defaults: Limits = {};
  const max: Limits = {};
  for (const name of Object.keys(LIMIT_FLAGS) as LimitName[]) {
    const d = values[defaultKey(name)];
    const m = values[maxKey(name)];
    if (typeof d === 'number') defaults[name] = d;
    if (typeof m === 'number') max[name] = m;
  }
  const spec = values.runAs;
  const runAs = typeof spec === 'string' && spec !== '' ? await resolveRunAs(spec) : undefined;
  const dir = values.cgroupParent;
  const cgroup = typeof dir === 'string' && dir !== '' ? await openCgroupParent(dir) : undefined;
  const steppingAsRoot = (runAs ? runAs.uid : process.getuid?.()) === 0;
  // pids.max binds root; RLIMIT_NPROC does not.
  const processesEnforceable = !steppingAsRoot || cgroup?.pids === true;
  const limits: LimitPolicy = { defaults, max, processesEnforceable };
  checkLimitPolicy(limits);
  return { limits, ...(runAs ? { runAs } : {}), ...(cgroup ? { cgroup } : {}) };
}
