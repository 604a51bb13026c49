import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';

/**
 * The cookie every process of a step carries in its environment, as Jenkins'
 * ProcessTreeKiller does: a process that left the step's process group (`setsid`, a
 * double fork) keeps it, so `/proc/*\/environ` finds it. No privileges needed: a
 * worker can read the environ of the processes it may kill.
 */
export const STEP_TOKEN_VAR = 'JW_STEP_TOKEN';

export function newStepToken(): string {
  return randomBytes(12).toString('hex');
}

/** Rounds of scan-and-kill: a process may fork between a scan and its kill. */
const ROUNDS = 10;
const READS_IN_FLIGHT = 64;

async function holdersOf(token: string): Promise<number[]> {
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const needle = Buffer.from(`${STEP_TOKEN_VAR}=${token}\0`);
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  const found: number[] = [];
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

/** Kills every process that carries the step's token; resolves with how many were found. */
export async function reapStep(token: string): Promise<number> {
  let total = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const pids = await holdersOf(token);
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
