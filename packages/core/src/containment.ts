import type { CgroupParent } from './cgroup.js';
import { LIMIT_NAMES, type LimitPolicy } from './limits.js';
import type { RunAs } from './run-as.js';

/** One line for the worker's start log: what holds its steps in (SPEC 3). */
export function describeContainment(
  limits: LimitPolicy,
  runAs?: RunAs,
  cgroup?: CgroupParent,
): string {
  const yes = (has: boolean) => (has ? 'yes' : 'no');
  const parts = [
    cgroup
      ? `cgroup v2 under ${cgroup.dir} (cgroup.kill; pids.max: ${yes(cgroup.pids)}, memory.max: ${yes(cgroup.memory)}) + process group + JW_STEP_TOKEN scan of /proc`
      : 'process group + JW_STEP_TOKEN scan of /proc (no cgroup)',
    runAs
      ? `steps run as ${runAs.spec} (${runAs.uid}:${runAs.gid})`
      : 'steps run as the worker user',
  ];
  const set = LIMIT_NAMES.flatMap((name) => {
    const d = limits.defaults[name];
    const m = limits.max[name];
    if (d === undefined && m === undefined) return [];
    return [`${name} ${d ?? m}${m === undefined ? '' : ` (at most ${m})`}`];
  });
  parts.push(set.length > 0 ? `rlimits: ${set.join(', ')}` : 'rlimits: only those a job sets');
  return parts.join('; ');
}
