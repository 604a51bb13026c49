import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { removeCgroup, writableCgroup2 } from '@jw/testing/cgroup';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { pidAlive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  awaitEmpty,
  type CgroupParent,
  CgroupParentError,
  cgroupLimits,
  openCgroupParent,
  reapStaleCgroups,
  StepCgroup,
} from './cgroup.js';
import { describeContainment } from './containment.js';
import { ErrorCode } from './errors.js';
import { NO_LIMITS } from './limits.js';
import { runStep } from './run-steps.js';
import { StepLog } from './step-log.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox('jw-cgroup-unit-');
});
afterEach(async () => {
  await box.cleanup();
});

describe('openCgroupParent refuses what is not a delegated cgroup v2 dir', () => {
  it.each([
    ['a plain folder', (root: string) => root, 'not a cgroup v2 directory'],
    ['a missing folder', (root: string) => path.join(root, 'nope'), 'no such directory'],
  ])('%s', async (_, dirOf, why) => {
    const dir = dirOf(box.root);
    const error = await openCgroupParent(dir).catch((e) => e);
    expect(error).toBeInstanceOf(CgroupParentError);
    expect(error.code).toBe(ErrorCode.BAD_CONFIG);
    expect(error.message).toMatch(new RegExp(`^--cgroup-parent ${dir}: ${why}`));
  });
});

describe('cgroupLimits', () => {
  const limits = { processes: 5, memoryMiB: 100, cpuSeconds: 1 };
  it('holds only what the controllers of the children can', () => {
    const parent = (pids: boolean, memory: boolean): CgroupParent => ({ dir: '/x', pids, memory });
    expect(cgroupLimits(parent(true, true), limits)).toEqual({ processes: 5, memoryMiB: 100 });
    expect(cgroupLimits(parent(true, false), limits)).toEqual({ processes: 5 });
    expect(cgroupLimits(parent(false, false), limits)).toEqual({});
    expect(cgroupLimits(parent(true, true), {})).toEqual({});
  });
});

describe('describeContainment', () => {
  it('says whether a cgroup holds the steps, and with which controllers', () => {
    const parent: CgroupParent = { dir: '/sys/fs/cgroup/jw', pids: true, memory: false };
    expect(describeContainment(NO_LIMITS, undefined, parent)).toMatch(
      /^cgroup v2 under \/sys\/fs\/cgroup\/jw \(cgroup\.kill; pids\.max: yes, memory\.max: no\) \+ process group/,
    );
    expect(describeContainment(NO_LIMITS)).toMatch(/^process group .* \(no cgroup\)/);
  });
});

const cgroup2 = await writableCgroup2();
const skipped = 'skip' in cgroup2 ? cgroup2.skip : undefined;
const mount = 'mount' in cgroup2 ? cgroup2.mount : undefined;

/** A sleep that is moved into `dir` and waited for by no one here. */
function sleeper() {
  const child = spawn('sleep', ['3004'], { stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

describe.skipIf(skipped)(`in a real cgroup v2${skipped ? ` (skipped: ${skipped})` : ''}`, () => {
  let parentDir: string;
  beforeEach(async () => {
    parentDir = path.join(mount!, `jwtest-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(parentDir);
  });
  afterEach(async () => {
    await removeCgroup(parentDir);
  });

  const children = async () => (await readdir(parentDir)).filter((n) => n.startsWith('jw-'));

  it('opens a parent, leaving no probe behind', async () => {
    const parent = await openCgroupParent(parentDir);
    expect(parent.dir).toBe(parentDir);
    expect(typeof parent.pids).toBe('boolean');
    expect(await children()).toEqual([]);
  });

  it("a step's cgroup takes a process in and, released, kills it and is gone", async () => {
    const parent = await openCgroupParent(parentDir);
    const cgroup = await StepCgroup.create(parent, 'abc123', {});
    expect(path.basename(cgroup.dir)).toBe(`jw-${process.pid}-abc123`);
    const pid = sleeper();
    await cgroup.enter(pid);
    expect(await readFile(path.join(cgroup.dir, 'cgroup.procs'), 'utf8')).toBe(`${pid}\n`);
    expect(await cgroup.release()).toBeUndefined();
    expect(pidAlive(pid)).toBe(false);
    expect(await children()).toEqual([]);
  });

  it('awaitEmpty resolves once the last process is gone, false when it stays', async () => {
    const dir = path.join(parentDir, 'jw-1-wait');
    await mkdir(dir);
    const pid = sleeper();
    await writeFile(path.join(dir, 'cgroup.procs'), String(pid));
    expect(await awaitEmpty(dir, 300)).toBe(false);
    const emptied = awaitEmpty(dir, 30_000);
    process.kill(pid, 'SIGKILL');
    expect(await emptied).toBe(true);
    await rmdir(dir);
  });

  it('reaps the children of dead workers only: not a live one, not a foreign dir', async () => {
    // pid 99999999 is above any pid_max; this process's parent is alive.
    const dead = path.join(parentDir, 'jw-99999999-0a');
    const live = path.join(parentDir, `jw-${process.ppid}-0b`);
    const foreign = path.join(parentDir, 'other-1-0c');
    for (const d of [dead, live, foreign]) await mkdir(d);
    const pid = sleeper();
    await writeFile(path.join(dead, 'cgroup.procs'), String(pid));
    expect(await reapStaleCgroups(parentDir)).toEqual(['jw-99999999-0a']);
    expect(pidAlive(pid)).toBe(false);
    await expect(access(dead)).rejects.toThrow();
    await access(live);
    await access(foreign);
  });

  it('a cancelled step: its cgroup is killed, an env-less daemon with it, and removed', async () => {
    const parent = await openCgroupParent(parentDir);
    const log = await StepLog.create(box.root, 0);
    const abort = new AbortController();
    const pidFile = path.join(box.root, 'daemon');
    const running = runStep(
      {
        index: 0,
        name: 'x',
        run: `env -i setsid sleep 3005 >/dev/null 2>&1 </dev/null & echo $! > ${pidFile}; sleep 3006`,
        env: {},
        continueOnError: false,
      },
      {
        workspace: box.workspacesDir,
        env: { PATH: process.env.PATH ?? '' },
        log,
        signal: abort.signal,
        killGraceMs: 300,
        cgroup: parent,
      },
    );
    const daemon = Number(
      await waitFor(async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim()),
    );
    expect(await children()).toHaveLength(1);
    abort.abort('cancel');
    expect((await running).status).toBe('cancelled');
    await log.close();
    expect(pidAlive(daemon)).toBe(false);
    expect(await children()).toEqual([]);
  });
});
