import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { randomHex } from './random-hex.js';

/**
 * The cookie every process of a step carries in its environment, as Jenkins'
 * ProcessTreeKiller does: a process that left the step's process group (`setsid`, a
 * double fork) keeps it, so `/proc/*\/environ` finds it. No privileges needed: a
 * worker can read the environ of the processes it may kill.
 */
export const STEP_TOKEN_VAR = 'JW_STEP_TOKEN';

/**
 * The first half of every step token of this process: the worker's watchdog kills
 * whatever carries a token that starts with it (worker-watchdog.ts). One per process, not
 * per worker: when the process dies, so must every step of every worker in it.
 */
export const PROCESS_TOKEN_PREFIX = randomHex(6);

export function newStepToken(): string {
  return PROCESS_TOKEN_PREFIX + randomHex(6);
}

/** Signals a step's process group (its own session: the step's pid is its id). */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Rounds of scan-and-kill: a process may fork between a scan and its kill. */
const ROUNDS = 10;
const READS_IN_FLIGHT = 64;
/**
 * Up to this many pids are read synchronously: procfs makes an environ from the process's
 * memory, never from a disk, and the usual step leaves a few pids to try (a plain step
 * one or two; a wrapped one its wrapper, its watchdog's two forks and the step), for
 * which four thread-pool round trips each cost more than the reads (0.9 ms per step on
 * a quiet machine).
 */
const READ_SYNC_AT_MOST = 16;

/**
 * Where a step's pids can be: every process it starts gets a pid allocated after its
 * wrapper's, so only pids from `first` on, up to the last one allocated (cyclic: the
 * counter wraps at `pid_max`), can carry its token. Reading only those takes a scan
 * from every process on the machine (a few hundred environs, 24–31 ms of CPU per step
 * on a loaded host) to the handful the step made. `forks` is the machine's fork count
 * (`/proc/stat` `processes`, threads included) before the step started: once more forks
 * than pids happened since, the counter may have gone round past `first`, and every pid
 * is read.
 */
export interface PidRange {
  first: number;
  forks: number;
}

/**
 * A number from a small /proc file, read synchronously: procfs makes it from memory and
 * never waits on a disk, and an async read would cost the main thread four thread-pool
 * round trips (open, stat, read, close) per counter, twice per step.
 */
function readProcNumber(file: string, pattern: RegExp): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const match = pattern.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** The machine's fork count so far (undefined where /proc does not say). */
export function forkCount(): number | undefined {
  return readProcNumber('/proc/stat', /^processes (\d+)$/m);
}

let pidMax: number | undefined;

/** Past this many pids in the range, listing /proc is cheaper than trying each pid. */
const PROBE_AT_MOST = 256;

/**
 * The pids a step may hold: a list to try when the range is small (no listing of /proc),
 * a filter over /proc's list when it is large, or undefined when every pid must be read.
 */
function pidCandidates(
  range: PidRange | undefined,
): { list: number[] } | { filter: (pid: number) => boolean } | undefined {
  if (!range) return undefined;
  pidMax ??= readProcNumber('/proc/sys/kernel/pid_max', /^(\d+)/);
  const last = readProcNumber('/proc/loadavg', /\/\d+ (\d+)\s*$/);
  const forks = forkCount();
  const max = pidMax;
  if (max === undefined || last === undefined || forks === undefined) return undefined;
  // Round the counter once (and a margin for the pids below 300 it skips): read all.
  if (forks - range.forks >= max - 512) return undefined;
  const { first } = range;
  // `last` just below `first`: nothing allocated since (a whole round is the fork check's).
  if (last >= first - 1) {
    if (last - first < PROBE_AT_MOST)
      return { list: Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i) };
    return { filter: (pid) => pid >= first && pid <= last };
  }
  return { filter: (pid) => pid >= first || pid <= last };
}

/** Whether `pid`'s environment holds `needle`; false when gone, a zombie or not ours to read. */
function carries(pid: number, needle: Buffer): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(needle);
  } catch {
    return false;
  }
}

async function holdersOf(token: string, range?: PidRange): Promise<number[]> {
  const candidates = pidCandidates(range);
  const needle = Buffer.from(`${STEP_TOKEN_VAR}=${token}\0`);
  const pids =
    candidates && 'list' in candidates
      ? candidates.list
      : (await readdir('/proc').catch(() => [] as string[]))
          .filter((e) => /^\d+$/.test(e))
          .map(Number)
          .filter((pid) => candidates?.filter(pid) ?? true);
  const found: number[] = [];
  if (pids.length <= READ_SYNC_AT_MOST) {
    for (const pid of pids) if (pid !== process.pid && carries(pid, needle)) found.push(pid);
    return found;
  }
  for (let i = 0; i < pids.length; i += READS_IN_FLIGHT) {
    await Promise.all(
      pids.slice(i, i + READS_IN_FLIGHT).map(async (pid) => {
        if (pid === process.pid) return;
        // Gone, a zombie (empty) or not ours to read: none of them needs a kill.
        const environ = await readFile(`/proc/${pid}/environ`).catch(() => undefined);
        if (environ?.includes(needle)) found.push(pid);
      }),
    );
  }
  return found;
}

/**
 * Kills every process that carries the step's token; resolves with how many were found.
 * `range`: where the step's pids can be (see PidRange); without it every pid is read.
 */
export async function reapStep(token: string, range?: PidRange): Promise<number> {
  let total = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const pids = await holdersOf(token, range);
    if (pids.length === 0) break;
    total += pids.length;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return total;
}

/**
 * The same scan in shell, for the watchdog that outlives a killed worker: one grep over
 * every environ (`-z`: NUL-separated entries). The token is in `$2` of the wrapper and
 * not in the watchdog's own environment, so the watchdog never matches itself.
 */
export const SHELL_REAP =
  'i=0; while [ $i -lt 10 ]; do i=$((i+1)); p=$(grep -lzx "JW_STEP_TOKEN=$2" /proc/[0-9]*/environ 2>/dev/null); ' +
  '[ -n "$p" ] || break; for f in $p; do f=${f#/proc/}; kill -KILL ${f%/environ}; done; done';
