import { z } from 'zod';
import { ErrorCode, JwError } from './errors.js';

/** The limits a job or a step may set (SPEC 3), each a positive whole number. */
export const LIMIT_NAMES = [
  'memoryMiB',
  'cpuSeconds',
  'openFiles',
  'fileSizeMiB',
  'processes',
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];
export type Limits = Partial<Record<LimitName, number>>;

const limit = (max: number) => z.int().positive().max(max);

/** Strict: a misspelt limit would otherwise leave a step unlimited without a word. */
export const limitsSchema = z.strictObject({
  memoryMiB: limit(1024 * 1024).optional(),
  cpuSeconds: limit(7 * 24 * 3600).optional(),
  openFiles: limit(1 << 20).optional(),
  fileSizeMiB: limit(1024 * 1024 * 1024).optional(),
  processes: limit(1 << 22).optional(),
});

/** A worker's own say: limits applied when a job sets none, and the most a job may ask. */
export interface LimitPolicy {
  defaults: Limits;
  max: Limits;
  /** False when steps run as root without a cgroup's pids.max: RLIMIT_NPROC does not bind root. */
  processesEnforceable: boolean;
}

export const NO_LIMITS: LimitPolicy = { defaults: {}, max: {}, processesEnforceable: true };

/** How each limit is named in errors: `memory limit 100 MiB`, `CPU limit 1 s`. */
export function describeLimit(name: LimitName, value: number): string {
  switch (name) {
    case 'memoryMiB':
      return `memory limit ${value} MiB`;
    case 'cpuSeconds':
      return `CPU limit ${value} s`;
    case 'openFiles':
      return `open files limit ${value}`;
    case 'fileSizeMiB':
      return `file size limit ${value} MiB`;
    case 'processes':
      return `processes limit ${value}`;
  }
}

/** Checks a worker's settings once, at start: a default above its own bound is a contradiction. */
export function checkLimitPolicy(policy: LimitPolicy): void {
  for (const name of LIMIT_NAMES) {
    const d = policy.defaults[name];
    const m = policy.max[name];
    if (d !== undefined && m !== undefined && d > m)
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        `the default ${describeLimit(name, d)} is above the worker's bound of ${m}`,
      );
    if (
      !policy.processesEnforceable &&
      (d !== undefined || m !== undefined) &&
      name === 'processes'
    )
      throw new JwError(
        ErrorCode.BAD_CONFIG,
        'a processes limit cannot bind steps that run as root: give --run-as (or a --cgroup-parent with the pids controller)',
      );
  }
}

/**
 * A step's limits: the worker's defaults, then the job's, then the step's own. A job may
 * lower a limit, never raise it past the worker's bound: asking more is a bad job (it
 * would fail later and more obscurely if it were clamped), and a bound applies even
 * when nothing else sets the limit.
 */
export function effectiveLimits(
  policy: LimitPolicy,
  job: Limits | undefined,
  step: Limits | undefined,
  where: string,
): Limits {
  const out: Limits = { ...policy.defaults };
  for (const layer of [job, step]) {
    for (const name of LIMIT_NAMES) if (layer?.[name] !== undefined) out[name] = layer[name];
  }
  for (const name of LIMIT_NAMES) {
    const max = policy.max[name];
    const asked = out[name];
    if (max === undefined) continue;
    if (asked === undefined) out[name] = max;
    else if (asked > max)
      throw new JwError(
        ErrorCode.BAD_JOB,
        `${where} asks for ${name} ${asked}, more than this worker allows (${max})`,
      );
  }
  if (out.processes !== undefined && !policy.processesEnforceable)
    throw new JwError(
      ErrorCode.BAD_JOB,
      `${where} sets a processes limit, which this worker cannot enforce: its steps run as root (start it with --run-as)`,
    );
  return out;
}

/**
 * `ulimit` lines for the step's wrapper (dash and bash agree on these letters). Memory is
 * RLIMIT_DATA, which counts a process's heap and private mappings but not the address
 * space a runtime merely reserves (node and the JVM reserve far more than they use).
 * The CPU hard limit is a second above the soft one, so that the step gets SIGXCPU,
 * which says why, before SIGKILL.
 */
export function ulimitScript(limits: Limits): string {
  const lines: string[] = [];
  const both = (flag: string, n: number) =>
    lines.push(`ulimit -S -${flag} ${n}`, `ulimit -H -${flag} ${n}`);
  if (limits.memoryMiB !== undefined) both('d', limits.memoryMiB * 1024);
  if (limits.cpuSeconds !== undefined)
    lines.push(`ulimit -S -t ${limits.cpuSeconds}`, `ulimit -H -t ${limits.cpuSeconds + 1}`);
  if (limits.openFiles !== undefined) both('n', limits.openFiles);
  // In 512-byte blocks.
  if (limits.fileSizeMiB !== undefined) both('f', limits.fileSizeMiB * 2048);
  if (limits.processes !== undefined) both('p', limits.processes);
  return lines.join(' && ');
}

const SIGXCPU = 24;
const SIGXFSZ = 25;

/** What a process or its shell prints when a limit refused it something. */
const REFUSALS: [LimitName, RegExp][] = [
  [
    'memoryMiB',
    /MemoryError|Cannot allocate memory|out of memory|bad_alloc|memory allocation failed|heap out of memory/i,
  ],
  ['openFiles', /Too many open files|EMFILE/],
  ['fileSizeMiB', /File too large|EFBIG/],
  ['processes', /Resource temporarily unavailable|can't fork|Cannot fork|fork: retry|EAGAIN/i],
];

/**
 * Which limit a failed step hit, if any. CPU and file size show as their signals (or a
 * shell's 128 + signal); the others only as what the refused process printed, so the
 * tail of its log is looked at, and only for the limits the step had.
 */
export function limitHit(
  limits: Limits,
  exitCode: number | null,
  signal: string | null,
  logTail: string,
): string | undefined {
  const died = (sig: string, n: number) => signal === sig || exitCode === 128 + n;
  if (limits.cpuSeconds !== undefined && (died('SIGXCPU', SIGXCPU) || signal === 'SIGKILL'))
    return describeLimit('cpuSeconds', limits.cpuSeconds);
  if (limits.fileSizeMiB !== undefined && died('SIGXFSZ', SIGXFSZ))
    return describeLimit('fileSizeMiB', limits.fileSizeMiB);
  for (const [name, pattern] of REFUSALS) {
    const value = limits[name];
    if (value !== undefined && pattern.test(logTail)) return describeLimit(name, value);
  }
  return undefined;
}
