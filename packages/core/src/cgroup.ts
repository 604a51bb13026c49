import { watch } from 'node:fs';
import {
  access,
  chown,
  mkdir,
  readdir,
  readFile,
  rmdir,
  statfs,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, JwError } from './errors.js';
import type { LimitName, Limits } from './limits.js';

/** `statfs` f_type of cgroup2 (linux/magic.h CGROUP2_SUPER_MAGIC). */
const CGROUP2_MAGIC = 0x63677270;

/** A cgroup v2 directory delegated to the worker (`--cgroup-parent`), checked at start. */
export interface CgroupParent {
  dir: string;
  /** `pids.max` exists in a child: the `processes` limit is the cgroup's, and binds root. */
  pids: boolean;
  /** `memory.max` exists in a child: `memoryMiB` also caps the step's cgroup. */
  memory: boolean;
}

/** `--cgroup-parent` cannot be used: the worker refuses to start (BAD_CONFIG, exit 2). */
export class CgroupParentError extends JwError {
  constructor(dir: string, why: string, cause?: unknown) {
    super(ErrorCode.BAD_CONFIG, `--cgroup-parent ${dir}: ${why}`, { cause });
    this.name = 'CgroupParentError';
  }
}

/**
 * The worker only ever touches children it made: `jw-<its pid>-<step token>`. The pid
 * tells a later worker whether the owner is gone (its children are then stale).
 */
const OWN_CHILD = /^jw-(\d+)-[0-9a-z]+$/;
const childName = (suffix: string) => `jw-${process.pid}-${suffix}`;

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

function ownerGone(pid: number): boolean {
  // A restarted container may give the new worker its predecessor's pid: that one is gone too.
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function populated(dir: string): Promise<boolean> {
  const events = await readFile(path.join(dir, 'cgroup.events'), 'utf8').catch(() => '');
  return /^populated 1$/m.test(events);
}

/** Poll period when inotify on cgroup.events says nothing (it should, on cgroup2). */
const POLL_MS = 250;

/**
 * Resolves true once no process is left in the cgroup (`cgroup.events` says `populated 0`),
 * false after `timeoutMs`. The kernel notifies a change of cgroup.events, so this is
 * event-driven; the poll only backs up a missed notification.
 */
export async function awaitEmpty(dir: string, timeoutMs: number): Promise<boolean> {
  if (!(await populated(dir))) return true;
  return new Promise((resolve) => {
    let done = false;
    const finish = (empty: boolean) => {
      if (done) return;
      done = true;
      watcher?.close();
      clearInterval(poll);
      clearTimeout(timer);
      resolve(empty);
    };
    const check = () => {
      populated(dir).then(
        (p) => p || finish(true),
        () => finish(true),
      );
    };
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(path.join(dir, 'cgroup.events'), check);
      watcher.on('error', () => {});
    } catch {
      // No inotify here: the poll alone.
    }
    const poll = setInterval(check, POLL_MS);
    const timer = setTimeout(() => finish(false), timeoutMs);
    // It may have emptied between the first read and the watch.
    check();
  });
}

/** A step's own processes could nest cgroups (root may): removed deepest first. */
async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  // An emptied cgroup may be busy a moment longer while its last tasks are released.
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 20) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** How long the processes of a killed cgroup may take to be gone. */
const EMPTY_TIMEOUT_MS = 10_000;

/** Kills everything in the cgroup, its subtree too, and waits for it to be gone. */
async function killAll(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'cgroup.kill'), '1').catch(() => {});
  await awaitEmpty(dir, EMPTY_TIMEOUT_MS);
}

/** Kills and removes the children of workers that died without removing them. */
export async function reapStaleCgroups(parentDir: string): Promise<string[]> {
  const entries = await readdir(parentDir, { withFileTypes: true });
  const stale = entries.filter((e) => {
    const owner = e.isDirectory() ? OWN_CHILD.exec(e.name) : null;
    return owner !== null && ownerGone(Number(owner[1]));
  });
  for (const e of stale) {
    await killAll(path.join(parentDir, e.name));
    await removeTree(path.join(parentDir, e.name));
  }
  return stale.map((e) => e.name);
}

/**
 * Checks at start that `dir` is a cgroup v2 directory this worker may make children in,
 * with `cgroup.kill` (Linux 5.14), by making and removing a probe child; removes stale
 * children of dead workers; tells which limit controllers the children get.
 */
export async function openCgroupParent(dir: string): Promise<CgroupParent> {
  const fs = await statfs(dir).catch((error) => {
    throw new CgroupParentError(dir, 'no such directory', error);
  });
  if (fs.type !== CGROUP2_MAGIC) {
    const mount = await cgroup2Mount();
    const hint = mount ? `cgroup2 is mounted at ${mount}` : 'no cgroup2 is mounted';
    throw new CgroupParentError(dir, `not a cgroup v2 directory (${hint})`);
  }
  if (!(await exists(path.join(dir, 'cgroup.procs'))))
    throw new CgroupParentError(dir, 'not a cgroup directory (no cgroup.procs)');
  await reapStaleCgroups(dir).catch((error) => {
    throw new CgroupParentError(dir, `cannot remove stale cgroups: ${error.message}`, error);
  });
  const probe = path.join(dir, childName('probe'));
  await mkdir(probe).catch((error) => {
    throw new CgroupParentError(
      dir,
      `the worker may not make cgroups in it (${error.code}): delegate it to the worker's user`,
      error,
    );
  });
  try {
    if (!(await exists(path.join(probe, 'cgroup.kill'))))
      throw new CgroupParentError(dir, 'its cgroups have no cgroup.kill (Linux 5.14 or later)');
    await writeFile(path.join(probe, 'cgroup.procs'), '').catch((error) => {
      // An empty write moves nothing; EACCES/EPERM/EROFS say the worker could not move a step.
      if (error.code !== 'EINVAL')
        throw new CgroupParentError(dir, `cannot write cgroup.procs (${error.code})`, error);
    });
    return {
      dir,
      pids: await exists(path.join(probe, 'pids.max')),
      memory: await exists(path.join(probe, 'memory.max')),
    };
  } finally {
    await rmdir(probe).catch(() => {});
  }
}

/** The worker's limits that its cgroups hold (the rest stay rlimits). */
export function cgroupLimits(parent: CgroupParent, limits: Limits): Limits {
  return {
    ...(parent.pids && limits.processes !== undefined ? { processes: limits.processes } : {}),
    ...(parent.memory && limits.memoryMiB !== undefined ? { memoryMiB: limits.memoryMiB } : {}),
  };
}

/** Which counter in which events file says a cgroup limit refused the step something. */
const HITS: [LimitName, file: string, counter: RegExp][] = [
  ['processes', 'pids.events', /^max (\d+)$/m],
  ['memoryMiB', 'memory.events', /^oom_kill (\d+)$/m],
];

/** The cgroup one shell step runs in: made before it starts, gone when it has ended. */
export class StepCgroup {
  private constructor(
    readonly dir: string,
    readonly limits: Limits,
  ) {}

  /**
   * Makes `jw-<pid>-<token>` under the parent with the step's cgroup limits. A step run
   * as another user gets its `cgroup.kill`, for the watchdog: killing its own cgroup is
   * all that gives it.
   */
  static async create(
    parent: CgroupParent,
    token: string,
    limits: Limits,
    user?: { uid: number; gid: number },
  ): Promise<StepCgroup> {
    const dir = path.join(parent.dir, childName(token));
    await mkdir(dir);
    const own = cgroupLimits(parent, limits);
    try {
      if (own.processes !== undefined)
        await writeFile(path.join(dir, 'pids.max'), String(own.processes));
      if (own.memoryMiB !== undefined) {
        await writeFile(path.join(dir, 'memory.max'), String(own.memoryMiB * 1024 * 1024));
        // Swapped out is still the step's memory: no swap, or the limit would only slow it.
        await writeFile(path.join(dir, 'memory.swap.max'), '0').catch(() => {});
      }
      if (user) await chown(path.join(dir, 'cgroup.kill'), user.uid, user.gid);
    } catch (error) {
      await rmdir(dir).catch(() => {});
      throw error;
    }
    return new StepCgroup(dir, own);
  }

  /** Moves a process in; what it starts from then on is born in the cgroup. */
  async enter(pid: number): Promise<void> {
    await writeFile(path.join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** Kills whatever is left, waits for it to be gone and removes the cgroup; names a limit it hit. */
  async release(): Promise<LimitName | undefined> {
    await killAll(this.dir);
    const hit = await this.limitHit();
    await removeTree(this.dir);
    return hit;
  }

  private async limitHit(): Promise<LimitName | undefined> {
    for (const [name, file, counter] of HITS) {
      if (this.limits[name] === undefined) continue;
      const events = await readFile(path.join(this.dir, file), 'utf8').catch(() => '');
      if (Number(counter.exec(events)?.[1] ?? 0) > 0) return name;
    }
    return undefined;
  }
}

/** Where cgroup2 is mounted, from /proc/mounts (for tests and hints; never assumed). */
export async function cgroup2Mount(): Promise<string | undefined> {
  const mounts = await readFile('/proc/mounts', 'utf8').catch(() => '');
  for (const line of mounts.split('\n')) {
    const [, where, type] = line.split(' ');
    if (type === 'cgroup2' && where) return where.replace(/\\040/g, ' ');
  }
  return undefined;
}
