// Finds the processes a worker started by the cookie in their environment, the way
// Jenkins' ProcessTreeKiller does: every worker gets CHAOS_WORKER=<incarnation>, and
// its steps inherit it, also when they leave the worker's process group.
import { readdir, readFile } from 'node:fs/promises';

export const MARKER = 'CHAOS_WORKER';

/** Live (not zombie) processes whose environment holds `CHAOS_WORKER=<prefix>…`: pid → value. */
export async function markedProcesses(prefix) {
  const found = new Map();
  let names;
  try {
    names = await readdir('/proc');
  } catch {
    return found;
  }
  const needle = `${MARKER}=${prefix}`;
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)
      .map(async (n) => {
        try {
          const env = await readFile(`/proc/${n}/environ`, 'latin1');
          const start = env.indexOf(needle);
          if (start === -1 || (start > 0 && env[start - 1] !== '\0')) return;
          const end = env.indexOf('\0', start);
          const value = env.slice(start + MARKER.length + 1, end === -1 ? undefined : end);
          const stat = await readFile(`/proc/${n}/stat`, 'latin1');
          if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return;
          found.set(Number(n), value);
        } catch {
          // Gone meanwhile, or not ours to read.
        }
      }),
  );
  return found;
}

/**
 * After a worker's SIGKILL: watches until no process of that incarnation is left
 * (or `limitMs` passed). Resolves with the last time one was seen alive (ms), or
 * undefined when none was seen after the kill.
 */
export async function watchSurvivors(incarnation, workerPid, limitMs = 20_000) {
  const until = Date.now() + limitMs;
  let lastSeen;
  const pids = new Set();
  for (;;) {
    const now = Date.now();
    const alive = [...(await markedProcesses(incarnation)).entries()].filter(
      ([pid, value]) => value === incarnation && pid !== workerPid,
    );
    if (alive.length === 0) break;
    for (const [pid] of alive) pids.add(pid);
    lastSeen = now;
    if (now > until) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { lastSeen, pids: [...pids] };
}
