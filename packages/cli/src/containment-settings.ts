import {
  checkLimitPolicy,
  type LimitName,
  type LimitPolicy,
  type Limits,
  type RunAs,
  resolveRunAs,
} from '@jw/core';
import { defaultKey, LIMIT_FLAGS, maxKey } from './containment-options.js';

export interface ContainmentSettings {
  limits: LimitPolicy;
  runAs?: RunAs;
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
  const steppingAsRoot = (runAs ? runAs.uid : process.getuid?.()) === 0;
  const limits: LimitPolicy = { defaults, max, processesEnforceable: !steppingAsRoot };
  checkLimitPolicy(limits);
  return { limits, ...(runAs ? { runAs } : {}) };
}
