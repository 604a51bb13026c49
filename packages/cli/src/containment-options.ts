import type { LimitName } from '@jw/core';
import type { OptionSpec } from './options.js';

/** Flag stem, env stem and unit of each limit (SPEC 3), in job.json's units. */
export const LIMIT_FLAGS: Record<LimitName, [flag: string, env: string, unit: string]> = {
  memoryMiB: ['memory', 'MEMORY', 'MiB'],
  cpuSeconds: ['cpu', 'CPU', 'seconds'],
  openFiles: ['open-files', 'OPEN_FILES', 'files'],
  fileSizeMiB: ['file-size', 'FILE_SIZE', 'MiB'],
  processes: ['processes', 'PROCESSES', 'processes'],
};

export const defaultKey = (name: LimitName) => `step_${name}`;
export const maxKey = (name: LimitName) => `maxStep_${name}`;

function limitSpecs(): Record<string, OptionSpec> {
  const specs: Record<string, OptionSpec> = {};
  for (const [name, [flag, env, unit]] of Object.entries(LIMIT_FLAGS) as [
    LimitName,
    (typeof LIMIT_FLAGS)[LimitName],
  ][]) {
    specs[defaultKey(name)] = {
      flags: `--step-${flag} <${unit}>`,
      env: `P_STEP_${env}`,
      type: 'int',
      min: 1,
      description: `${name} of a step that sets none (job.json "limits")`,
    };
    specs[maxKey(name)] = {
      flags: `--max-step-${flag} <${unit}>`,
      env: `P_MAX_STEP_${env}`,
      type: 'int',
      min: 1,
      description: `most ${name} a job may ask for; more is a bad job`,
    };
  }
  return specs;
}

/** What a worker may contain its steps with. `P_` is replaced by the app's env prefix. */
export const CONTAINMENT_OPTIONS: Record<string, OptionSpec> = {
  ...limitSpecs(),
  runAs: {
    flags: '--run-as <user[:group]>',
    env: 'JW_RUN_AS',
    description: 'run steps as this user; the worker must run as root',
  },
  cgroupParent: {
    flags: '--cgroup-parent <dir>',
    env: 'JW_CGROUP_PARENT',
    description:
      'a cgroup v2 directory delegated to the worker: each step runs in its own cgroup under it',
  },
};
