import { readFile, readlink } from 'node:fs/promises';
import os from 'node:os';

/** Who a process is, well enough to tell from another host whether it can still be alive. */
export interface ProcessIdentity {
  hostname: string;
  /** The pid namespace, so that containers sharing a hostname do not judge each other's pids. */
  pidNamespace: string | null;
  pid: number;
  /** Kernel start time of the process (clock ticks since boot), so a reused pid is not taken for it. */
  pidStartTime?: string | null;
}

let namespaceCache: string | null | undefined;
export async function pidNamespace(): Promise<string | null> {
  if (namespaceCache === undefined)
    namespaceCache = await readlink('/proc/self/ns/pid').catch(() => null);
  return namespaceCache;
}

/** Fields 3 onwards of a `/proc/{pid}/stat` text. */
function statFields(stat: string): string[] {
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Fields 3 onwards of `/proc/{pid}/stat`; undefined where there is no procfs or no such pid. */
async function procStat(pid: number): Promise<string[] | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined ? undefined : statFields(stat);
}

/** Field 22 of `/proc/{pid}/stat`; null where there is no procfs. */
export async function processStartTime(pid: number): Promise<string | null> {
  return (await procStat(pid))?.[19] ?? null;
}

let selfCache: Promise<ProcessIdentity> | undefined;
export function selfIdentity(): Promise<ProcessIdentity> {
  selfCache ??= (async () => ({
    hostname: os.hostname(),
    pidNamespace: await pidNamespace(),
    pid: process.pid,
    pidStartTime: await processStartTime(process.pid),
  }))();
  return selfCache;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True only when the process is known to be gone: it ran on this host (same hostname and
 * pid namespace) and its pid is free or now belongs to a later process. A process of
 * another host is never judged.
 */
export async function processGone(owner: ProcessIdentity): Promise<boolean> {
  const self = await selfIdentity();
  if (owner.hostname !== self.hostname) return false;
  if (owner.pidNamespace === null || owner.pidNamespace !== self.pidNamespace) return false;
  if (!pidAlive(owner.pid)) return true;
  const fields = await procStat(owner.pid);
  // A zombie has exited (a container's PID 1 may never reap it).
  if (fields?.[0] === 'Z') return true;
  if (!owner.pidStartTime || !fields?.[19]) return false;
  return fields[19] !== owner.pidStartTime;
}
