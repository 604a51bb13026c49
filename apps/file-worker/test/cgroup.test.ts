import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mountsOf, removeCgroup, writableCgroup2 } from '@jw/testing/cgroup';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { pidAlive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

const cgroup2 = await writableCgroup2();
const skipped = 'skip' in cgroup2 ? cgroup2.skip : undefined;
const CGROUP2 = 'mount' in cgroup2 ? cgroup2.mount : undefined;

let box: Sandbox;
let q: ReturnType<typeof queue>;
/** The cgroup "delegated" to the worker: one per test, under the cgroup2 mount. */
let parent: string;
const stepCgroups = async () =>
  (await readdir(parent).catch(() => [] as string[])).filter((n) => n.startsWith('jw-'));

beforeEach(async () => {
  box = await createSandbox('jw-cgroup-');
  q = queue(box);
  if (skipped) return;
  parent = path.join(CGROUP2!, `jwtest-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(parent);
});
afterEach(async () => {
  await killWorkers();
  if (!skipped) await removeCgroup(parent);
  await box.cleanup();
});

async function runOne(id: string, job: unknown, args: string[] = []) {
  await box.makeJob(id, job);
  await q.drop(`${id}.json`, { id });
  const w = startWorker(box, ['--max-jobs', '1', '--cgroup-parent', parent, ...args]);
  expect((await w.exited).code).toBe(0);
  return w.stderr;
}

/**
 * A daemon with an empty env (no JW_STEP_TOKEN: the /proc scan cannot find it) and a
 * double fork likewise; their pids land in `<pids>.a` and `<pids>.b`.
 */
const ESCAPE = (pids: string) =>
  `env -i setsid sleep 3001 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.a; ` +
  `( ( env -i sleep 3002 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.b ) & ); `;
const pidsOf = async (pids: string) =>
  [await readFile(`${pids}.a`, 'utf8'), await readFile(`${pids}.b`, 'utf8')].map(Number);

describe.skipIf(skipped)(`cgroup v2 containment${skipped ? ` (skipped: ${skipped})` : ''}`, () => {
  it('says at start that the cgroup holds the steps', async () => {
    // A secret takes the masked path (stdout a pipe, beside the gate on fd 4).
    const log = await runOne('hi', {
      env: { API_TOKEN: 'tok-5e5e5e' },
      steps: ['echo "$API_TOKEN"'],
    });
    expect(await box.readLog('hi', 0)).toBe('***\n');
    expect(log).toMatch(
      new RegExp(
        `cgroup v2 under ${parent} \\(cgroup.kill; pids.max: (yes|no), memory.max: (yes|no)\\)`,
      ),
    );
    expect(await stepCgroups()).toEqual([]);
  });

  it('runs each step in its own cgroup under the parent', async () => {
    await runOne('where', {
      steps: ['grep ^0:: /proc/self/cgroup', 'grep ^0:: /proc/self/cgroup'],
    });
    const rel = parent.slice(CGROUP2!.length);
    const [a, b] = [await box.readLog('where', 0), await box.readLog('where', 1)];
    expect(a).toMatch(new RegExp(`^0::${rel}/jw-\\d+-[0-9a-f]+\\n$`));
    expect(b).toMatch(new RegExp(`^0::${rel}/jw-\\d+-[0-9a-f]+\\n$`));
    expect(a).not.toBe(b);
    expect(await stepCgroups()).toEqual([]);
  });

  it('kills a daemon that left the group and emptied its env, when the step ends', async () => {
    const pids = path.join(box.root, 'pids');
    // The step checks that its daemons still run as it ends: they die with its cgroup.
    await runOne('esc', {
      steps: [`${ESCAPE(pids)} sleep 1; kill -0 $(cat ${pids}.a) $(cat ${pids}.b)`],
    });
    expect(await q.result('esc')).toMatchObject({ status: 'success' });
    const [a, b] = await pidsOf(pids);
    await waitFor(() => !pidAlive(a!) && !pidAlive(b!), 10_000);
    expect(await stepCgroups()).toEqual([]);
  });

  it('kills them after a kill -9 of the worker; no stale cgroup is left after the next start', async () => {
    const pids = path.join(box.root, 'pids');
    await box.makeJob('kill', { steps: [`${ESCAPE(pids)} sleep 3003`] });
    await q.drop('kill.json', { id: 'kill' });
    const w = startWorker(box, ['--cgroup-parent', parent]);
    await waitFor(async () => (await readFile(`${pids}.b`, 'utf8').catch(() => '')).trim());
    const [a, b] = await pidsOf(pids);
    expect(pidAlive(a!) && pidAlive(b!)).toBe(true);
    expect(await stepCgroups()).toHaveLength(1);
    w.kill('SIGKILL');
    await w.exited;
    await waitFor(() => !pidAlive(a!) && !pidAlive(b!), 10_000);
    // The next worker on this parent removes what a dead one left (the watchdog may have
    // already); with nothing to take up again, it finds it idle and exits.
    await rm(q.root, { recursive: true });
    await rm(path.join(box.jobsDir, 'kill'), { recursive: true });
    const next = startWorker(box, ['--cgroup-parent', parent, '--idle-timeout', '1']);
    expect((await next.exited).code).toBe(0);
    expect(await stepCgroups()).toEqual([]);
  });

  it('kills and removes at start the cgroup of a worker that is gone, and no other', async () => {
    // A pid above any pid_max: its worker is surely dead.
    const stale = path.join(parent, 'jw-99999999-0123abcd');
    const foreign = path.join(parent, 'someone-else');
    await mkdir(stale);
    await mkdir(foreign);
    const w = startWorker(box, ['--cgroup-parent', parent, '--idle-timeout', '1']);
    expect((await w.exited).code).toBe(0);
    await expect(access(stale)).rejects.toThrow();
    await access(foreign);
  });

  it('refuses a plain folder, a missing one and a cgroup v1 dir (exit 2)', async () => {
    const [v1] = await mountsOf('cgroup');
    const bad = [box.root, path.join(box.root, 'missing'), ...(v1 ? [v1] : [])];
    for (const dir of bad) {
      const w = startWorker(box, ['--cgroup-parent', dir]);
      expect((await w.exited).code, dir).toBe(2);
      expect(w.stderr).toContain(`--cgroup-parent ${dir}: `);
      expect(w.stderr).toMatch(/not a cgroup v2 directory|no such directory/);
    }
    // The env var, too.
    const env = startWorker(box, [], { JW_CGROUP_PARENT: box.root });
    expect((await env.exited).code).toBe(2);
    expect(env.stderr).toContain('not a cgroup v2 directory');
  });

  const asRoot = process.getuid?.() === 0;
  it.skipIf(!asRoot)(
    'under --run-as the watchdog of a killed worker still kills the cgroup',
    async () => {
      // mkdtemp makes the sandbox 0700: the step's user must be able to reach it.
      await chmod(box.root, 0o755);
      const shared = path.join(box.root, 'shared');
      await mkdir(shared);
      await chmod(shared, 0o777);
      const pids = path.join(shared, 'pids');
      await box.makeJob('as', { steps: [`${ESCAPE(pids)} sleep 3003`] });
      await q.drop('as.json', { id: 'as' });
      const w = startWorker(box, ['--cgroup-parent', parent, '--run-as', 'nobody']);
      await waitFor(async () => (await readFile(`${pids}.b`, 'utf8').catch(() => '')).trim());
      const [a, b] = await pidsOf(pids);
      w.kill('SIGKILL');
      await w.exited;
      await waitFor(() => !pidAlive(a!) && !pidAlive(b!), 10_000);
    },
  );
});

/**
 * The limit controllers need the parent's own parent to hand them down; where the
 * cgroup2 root has none for its children (a v1 hybrid), these cannot run.
 */
async function whyNoControllers(): Promise<string | undefined> {
  if (skipped) return skipped;
  const probe = path.join(CGROUP2!, `jwtest-ctl-${process.pid}`);
  await mkdir(probe);
  const available = (await readFile(path.join(probe, 'cgroup.controllers'), 'utf8')).trim();
  await rmdir(probe);
  const words = available.split(/\s+/);
  if (!words.includes('pids') || !words.includes('memory'))
    return `a cgroup under ${CGROUP2} gets no pids and memory controllers (its cgroup.controllers: ${available || 'none'})`;
  return undefined;
}
const noControllers = await whyNoControllers();

describe.skipIf(noControllers)(
  `cgroup limits${noControllers ? ` (skipped: ${noControllers})` : ''}`,
  () => {
    beforeEach(async () => {
      // The test's parent hands both controllers to the step cgroups it gets.
      await writeFile(path.join(parent, 'cgroup.subtree_control'), '+pids +memory');
    });

    it('a processes limit is pids.max, which binds root too', async () => {
      const log = await runOne('procs', {
        steps: [
          {
            run: 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait',
            limits: { processes: 5 },
          },
        ],
      });
      expect(log).toContain('pids.max: yes');
      const result = await q.result('procs');
      expect(result.status).toBe('failed');
      expect(result.error).toContain('processes limit 5 reached');
    });

    it('a memory limit is also memory.max: tmpfs pages (no rlimit counts them) are capped', async () => {
      const shm = `/dev/shm/jw-cgroup-test-${process.pid}`;
      try {
        await runOne('mem', {
          steps: [{ run: `head -c 300000000 /dev/zero > ${shm}`, limits: { memoryMiB: 100 } }],
        });
        const result = await q.result('mem');
        expect(result.status).toBe('failed');
        expect(result.error).toContain('memory limit 100 MiB reached');
      } finally {
        await rm(shm, { force: true });
      }
    });
  },
);
