import { execFileSync } from 'node:child_process';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, exists, type Sandbox, waitFor } from '@jw/testing/fs';
import { pidAlive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queue, startWorker } from './helpers.js';

/**
 * Hostile drives and bad input (issue 13), each injected through the built binary.
 * chattr +i stands for "cannot be written" (chmod does not stop root, which these tests
 * run as); a 2 MB tmpfs mounted on the jobs dir stands for a full disk.
 */

let box: Sandbox;
let q: ReturnType<typeof queue>;
let elsewhere: string;
const cleanups: (() => void | Promise<void>)[] = [];
beforeEach(async () => {
  box = await createSandbox('jw-hostile-');
  q = queue(box);
  elsewhere = path.join(box.root, 'elsewhere');
  await mkdir(elsewhere);
});
afterEach(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo();
  await box.cleanup();
});

async function canRun(command: string, args: string[]): Promise<boolean> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'jw-probe-'));
  try {
    execFileSync(command, [...args, dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    try {
      execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });
    } catch {}
    try {
      execFileSync('umount', [dir], { stdio: 'ignore' });
    } catch {}
    await rm(dir, { recursive: true, force: true });
  }
}
/** Needs root and a file system with the flag (ext4 has it, tmpfs not). */
const canChattr = await canRun('chattr', ['+i']);
/** Needs root (CAP_SYS_ADMIN). */
const canMount = await canRun('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs']);

/** A small tmpfs on `dir` for the test (a full disk), unmounted after it. */
function mountTmpfs(dir: string, options: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', dir]);
  });
}

/** One job, and quick retries of an unwritable results dir. */
const ONE_JOB_QUICK_RETRIES = [
  '--max-jobs',
  '1',
  '--results-retries',
  '2',
  '--results-backoff',
  '100ms',
];

function immutable(dir: string): void {
  execFileSync('chattr', ['+i', dir]);
  cleanups.push(() => {
    execFileSync('chattr', ['-i', dir]);
  });
}

/** Every line the worker logged, parsed (LOG_FORMAT=json). */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** No log line carries a stack trace. */
function expectNoStack(stderr: string): void {
  expect(stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  for (const line of logLines(stderr)) expect(JSON.stringify(line)).not.toMatch(/"stack"/);
}

const run = async (args: string[] = ['--max-jobs', '1']) => {
  const w = startWorker(box, args);
  const exit = await w.exited;
  return { ...exit, stderr: w.stderr };
};

describe('file-worker on a hostile drive (issue 13)', () => {
  it('1: refuses a results/ that is a link; writes nothing through it', async () => {
    const dir = await box.makeJob('j', { steps: ['echo art > art.txt; echo log'] });
    await symlink(elsewhere, path.join(dir, 'results'));
    await q.drop('j.json', { id: 'j' });
    const w = await run();
    expect(w.code).toBe(0);
    expect(await q.result('j')).toMatchObject({
      id: 'j',
      status: 'error',
      errorCode: 'BAD_JOB',
      manifestFile: null,
      error: expect.stringMatching(/results is a symlink/),
    });
    expect(await readdir(elsewhere)).toEqual([]);
    expect(await readlink(path.join(dir, 'results'))).toBe(elsewhere);
  });

  it('1: refuses a link below results/ where a step puts an artifact', async () => {
    const dir = await box.makeJob('j', { steps: ['mkdir -p dist && echo app > dist/app.js'] });
    await mkdir(path.join(dir, 'results'));
    await symlink(elsewhere, path.join(dir, 'results/dist'));
    await q.drop('j.json', { id: 'j' });
    expect((await run()).code).toBe(0);
    expect(await q.result('j')).toMatchObject({ status: 'error', errorCode: 'BAD_JOB' });
    expect((await box.readResult('j')).error).toMatch(/results\/dist is a symlink/);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('1: refuses links in place of result.json and step_0.log; their targets stay as they were', async () => {
    for (const name of ['result.json', 'step_0.log']) {
      const id = name.replace('.', '-');
      const target = path.join(elsewhere, name);
      await writeFile(target, 'untouched');
      const dir = await box.makeJob(id, { steps: ['echo x > art.txt; echo log'] });
      await mkdir(path.join(dir, 'results'));
      await symlink(target, path.join(dir, 'results', name));
      await q.drop(`${id}.json`, { id });
      expect((await run()).code).toBe(0);
      expect(await q.result(id)).toMatchObject({
        status: 'error',
        errorCode: 'BAD_JOB',
        manifestFile: null,
        error: expect.stringContaining(`results/${name} is a symlink`),
      });
      expect(await readFile(target, 'utf8')).toBe('untouched');
      expect((await lstat(path.join(dir, 'results', name))).isSymbolicLink()).toBe(true);
      expect(await readdir(path.join(dir, 'results'))).toEqual([name]);
    }
    expect((await readdir(elsewhere)).sort()).toEqual(['result.json', 'step_0.log']);
  });

  it('5, 6: copies an artifact with a 255-byte name and one with a newline in its name', async () => {
    const long = 'n'.repeat(255);
    await box.makeJob('names', {
      steps: [`mkdir -p dist && echo long > dist/${long} && printf nl > "$(printf 'a\\nb.txt')"`],
    });
    await q.drop('names.json', { id: 'names' });
    expect((await run()).code).toBe(0);
    expect(await q.result('names')).toMatchObject({ status: 'success' });
    const results = path.join(box.jobsDir, 'names/results');
    expect(await readFile(path.join(results, 'dist', long), 'utf8')).toBe('long\n');
    expect(await readFile(path.join(results, 'a\nb.txt'), 'utf8')).toBe('nl');
    expect((await box.readResult('names')).artifacts.map((a: { path: string }) => a.path)).toEqual([
      'a\nb.txt',
      `dist/${long}`,
    ]);
  });

  it('7: a job dir that is a file is a BAD_JOB with a result message', async () => {
    await writeFile(path.join(box.jobsDir, 'afile'), 'not a dir');
    await q.drop('afile.json', { id: 'afile' });
    const w = await run();
    expect(w.code).toBe(0);
    expect(await q.result('afile')).toMatchObject({
      status: 'error',
      errorCode: 'BAD_JOB',
      manifestFile: null,
      error: 'job dir afile is not a directory',
    });
    expect(await readFile(path.join(box.jobsDir, 'afile'), 'utf8')).toBe('not a dir');
    expectNoStack(w.stderr);
  });

  it.skipIf(!canChattr)(
    '7: an unwritable results/ is retried, then answered RESULTS_UNWRITABLE, dead-lettered, exit 1',
    async () => {
      const dir = await box.makeJob('ro', { steps: ['echo x'] });
      await mkdir(path.join(dir, 'results'));
      immutable(path.join(dir, 'results'));
      await q.drop('ro.json', { id: 'ro' });
      const w = await run([
        '--max-jobs',
        '1',
        '--results-retries',
        '3',
        '--results-backoff',
        '100ms',
      ]);
      expect(w.code).toBe(1);
      expect(await q.result('ro')).toMatchObject({
        id: 'ro',
        status: 'error',
        manifestFile: null,
        errorCode: 'RESULTS_UNWRITABLE',
      });
      expect((await readdir(q.dir('failed'))).sort()).toEqual(['ro.json', 'ro.json.reason']);
      expect(await readdir(q.dir('pending'))).toEqual([]);
      const retries = logLines(w.stderr).filter(
        (l) => l.msg === 'results dir not writable; trying again',
      );
      expect(retries).toHaveLength(2);
      expectNoStack(w.stderr);
    },
  );

  it.skipIf(!canChattr)(
    '7: a long-running worker whose every results/ fails exits 1 after three jobs',
    async () => {
      for (const id of ['a', 'b', 'c', 'd']) {
        const dir = await box.makeJob(id, { steps: ['true'] });
        await mkdir(path.join(dir, 'results'));
        immutable(path.join(dir, 'results'));
        await q.drop(`${id}.json`, { id });
      }
      const w = await run(['--results-retries', '1']);
      expect(w.code).toBe(1);
      expect(w.stderr).toMatch(/results dir of 3 jobs in a row could not be written/);
      for (const id of ['a', 'b', 'c'])
        expect(await q.result(id)).toMatchObject({ errorCode: 'RESULTS_UNWRITABLE' });
      expect(await readdir(q.dir('pending'))).toEqual(['d.json']);
    },
  );

  it.skipIf(!canMount)(
    '7: a full disk: RESULTS_UNWRITABLE, dead-lettered, exit 1; a disk filled by the sync: a final SYNC_FAILED',
    async () => {
      mountTmpfs(box.jobsDir, 'size=2m');
      // Filled by the sync: the half-copied artifact is removed, so the manifest still fits.
      await box.makeJob('big', { steps: ['head -c 3000000 /dev/zero > big.bin'] });
      await q.drop('big.json', { id: 'big' });
      expect((await run()).code).toBe(0);
      expect(await q.result('big')).toMatchObject({ status: 'error', errorCode: 'SYNC_FAILED' });
      const m = await box.readResult('big');
      expect(m).toMatchObject({ status: 'error', errorCode: 'SYNC_FAILED' });
      expect(m.error).toMatch(/ENOSPC|no space/i);
      expect(await readdir(path.join(box.jobsDir, 'big/results'))).not.toContain('big.bin');
      // Full before the job starts: nothing can be written at all.
      await box.makeJob('full', { steps: ['echo x'] });
      const filler = path.join(box.jobsDir, 'filler');
      await writeFile(filler, Buffer.alloc(4 * 1024 * 1024)).catch(() => {});
      await q.drop('full.json', { id: 'full' });
      const w = await run(ONE_JOB_QUICK_RETRIES);
      expect(w.code).toBe(1);
      expect(await q.result('full')).toMatchObject({
        status: 'error',
        manifestFile: null,
        errorCode: 'RESULTS_UNWRITABLE',
        error: expect.stringMatching(/ENOSPC/),
      });
      expect(await readdir(q.dir('failed'))).toContain('full.json');
      // No empty claim left behind to block the job once space is back.
      expect(await exists(path.join(box.jobsDir, 'full/results/.claim'))).toBe(false);
      await rm(filler);
      await q.drop('full.json', { id: 'full' });
      expect((await run()).code).toBe(0);
      expect(await q.result('full')).toMatchObject({ status: 'success' });
    },
  );

  it.skipIf(!canMount)(
    '7: a drive filled by a step: the next step, whose start cannot be saved, is stopped at once',
    async () => {
      // Out of inodes, not bytes: a new file (the manifest's temp) fails for certain.
      mountTmpfs(box.jobsDir, 'size=2m,nr_inodes=64');
      const pid = path.join(box.root, 'pid');
      await box.makeJob('filled', {
        steps: [
          // The next step's log is there already, so only the manifest's save fails.
          // (A subshell each: a failed redirection of `:` would end the step's shell.)
          ': > "$JW_RESULTS_DIR/step_1.log"; i=0; while (: > "$JW_RESULTS_DIR/f$i") 2>/dev/null; do i=$((i+1)); done',
          `echo $$ > ${pid}; exec sleep 600`,
        ],
      });
      await q.drop('filled.json', { id: 'filled' });
      const w = await run(ONE_JOB_QUICK_RETRIES);
      expect(w.code).toBe(1);
      expect(await q.result('filled')).toMatchObject({ errorCode: 'RESULTS_UNWRITABLE' });
      expect(w.stderr).toMatch(/cannot write result\.json: ENOSPC/);
      // The step started, and was stopped by the failed save, not by its end (600 s).
      const stepPid = Number(await readFile(pid, 'utf8'));
      expect(() => process.kill(stepPid, 0)).toThrow();
    },
  );

  it('8: a missing jobs dir is a bad setting: exit 2 at once, one line saying so', async () => {
    await rm(box.jobsDir, { recursive: true });
    await q.drop('x.json', { id: 'x', steps: ['true'] });
    const w = await run(['--idle-timeout', '30']);
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/jobs dir .*jobs is not there \(ENOENT\)/);
    expectNoStack(w.stderr);
    expect(await readdir(q.dir('pending'))).toEqual(['x.json']);
  });

  it('9: a workspaces dir that cannot be made or written is a bad setting: exit 2', async () => {
    await rm(box.workspacesDir, { recursive: true });
    await writeFile(box.workspacesDir, 'a file');
    await q.drop('x.json', { id: 'x', steps: ['true'] });
    const w = await run(['--idle-timeout', '30']);
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/workspaces dir .* cannot be written/);
    expectNoStack(w.stderr);
    expect(await readdir(q.dir('pending'))).toEqual(['x.json']);
  });

  it('9: a missing workspaces dir is created', async () => {
    await rm(box.workspacesDir, { recursive: true });
    await q.drop('x.json', { id: 'x', steps: ['true'] });
    expect((await run()).code).toBe(0);
    expect(await q.result('x')).toMatchObject({ status: 'success' });
  });

  it.skipIf(!canChattr)(
    '9: a workspaces dir that breaks later: the job is given back, readiness goes down, work stops',
    async () => {
      const w = startWorker(box, ['--health-port', '0', '--max-jobs', '1']);
      cleanups.push(async () => {
        w.kill('SIGKILL');
        await w.exited;
      });
      await w.waitForOutput('health server on port');
      const port = logLines(w.stderr).find((l) => l.healthPort)!.healthPort as number;
      const ready = async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
      // Ready once started (its dirs checked): broken before that, it would exit 2 instead.
      await waitFor(async () => (await ready()) === 200);
      immutable(box.workspacesDir);
      await box.makeJob('j', { steps: ['echo ran'] });
      await q.drop('j.json', { id: 'j' });
      await waitFor(async () => (await ready()) === 503);
      const body = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as {
        reason?: string;
      };
      expect(body.reason).toMatch(/workspaces dir .* cannot be written/);
      // Given back to the queue (after the release delay), with nothing run.
      await waitFor(async () => (await readdir(q.dir('pending'))).includes('j.json'));
      expect((await box.readResult('j')).status).toBe('requeued');
      expect(await exists(path.join(box.jobsDir, 'j/results/step_0.log'))).toBe(false);
      // It takes no work while broken: the request stays in pending/.
      await new Promise((r) => setTimeout(r, 1000));
      expect(await readdir(q.dir('pending'))).toEqual(['j.json']);
      w.kill('SIGTERM');
      expect((await w.exited).code).toBe(1);
      expectNoStack(w.stderr);
    },
  );

  it('10: a job dir with links out of it runs; links are copied as links, none followed', async () => {
    const secret = path.join(elsewhere, 'secret');
    await writeFile(secret, 'secret');
    const dir = await box.makeJob('links', {
      steps: ['test -L escape && test -L dir-out && readlink escape > target.txt'],
    });
    await symlink(secret, path.join(dir, 'escape'));
    await symlink(elsewhere, path.join(dir, 'dir-out'));
    await q.drop('links.json', { id: 'links' });
    expect((await run()).code).toBe(0);
    expect(await q.result('links')).toMatchObject({ status: 'success' });
    const results = path.join(dir, 'results');
    expect(await readFile(path.join(results, 'target.txt'), 'utf8')).toBe(`${secret}\n`);
    expect((await readdir(results)).sort()).toEqual(['result.json', 'step_0.log', 'target.txt']);
    expect(await readdir(elsewhere)).toEqual(['secret']);
  });

  it('14: a link or a FIFO put in place of $JW_PROGRESS is neither followed nor waited on', async () => {
    const secret = path.join(elsewhere, 'secret');
    await writeFile(secret, 'secret-text\n');
    await box.makeJob('progress', {
      steps: [
        `rm -f "$JW_PROGRESS" && ln -s ${secret} "$JW_PROGRESS"`,
        'rm -f "$JW_PROGRESS" && mkfifo "$JW_PROGRESS"',
        'echo 50 last >> "$JW_PROGRESS"',
      ],
    });
    await q.drop('progress.json', { id: 'progress' });
    expect((await run()).code).toBe(0);
    expect(await q.result('progress')).toMatchObject({ status: 'success' });
    const manifest = await box.readResult('progress');
    expect(manifest.progress).toMatchObject({ percent: 50, message: 'last' });
    expect(JSON.stringify(manifest)).not.toContain('secret-text');
    expect(await readFile(secret, 'utf8')).toBe('secret-text\n');
  });

  it('15: a step that kills the process waiting for it ends as an error, its processes with it; the next job runs', async () => {
    const pids = path.join(elsewhere, 'pids');
    // A worker that takes more than one job starts its steps from its launcher, which is
    // then the step's parent.
    await box.makeJob('parent', {
      steps: [`sleep 600 & echo $! $$ > ${pids}; kill -KILL $PPID; exec sleep 600`],
    });
    await box.makeJob('next', { steps: ['echo next'] });
    await q.drop('parent.json', { id: 'parent' });
    const w = startWorker(box, ['--max-jobs', '2']);
    expect(await waitFor(() => q.result('parent').catch(() => undefined))).toMatchObject({
      status: 'failed',
    });
    await q.drop('next.json', { id: 'next' });
    expect((await w.exited).code).toBe(0);
    expect(await q.result('next')).toMatchObject({ status: 'success' });
    expect(await box.readLog('next', 0)).toBe('next\n');
    const manifest = await box.readResult('parent');
    expect(manifest.steps[0]).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/process that watched the step was killed/),
    });
    for (const pid of (await readFile(pids, 'utf8')).trim().split(' ').map(Number))
      expect(pidAlive(pid)).toBe(false);
  });

  it('12: bad input is logged as one line with its reason; no wrapper or bare zod text', async () => {
    await box.makeJob('badstep', { steps: [42] });
    await box.makeJob('badenv', { steps: ['true'], env: { X: { nested: true } } });
    await box.makeJob('nocwd', { steps: [{ run: 'true', cwd: 'missing/dir' }] });
    await q.drop('badstep.json', { id: 'badstep' });
    await q.drop('badenv.json', { id: 'badenv' });
    await q.drop('nocwd.json', { id: 'nocwd' });
    await q.drop('badreq.json', { id: 'badreq', steps: [{ foo: 1 }] });
    const w = await run(['--max-jobs', '3']);
    expect(w.code).toBe(0);
    const texts: string[] = [];
    for (const id of ['badstep', 'badenv', 'nocwd', 'badreq']) {
      const result = await q.result(id);
      expect(result.status).toBe(id === 'nocwd' ? 'failed' : 'error');
      texts.push(result.error);
    }
    expect(texts[0]).toMatch(
      /steps\.0: expected a command string or an object with "run" or "uses"/,
    );
    expect(texts[1]).toMatch(/env\.X: expected a string, number or boolean/);
    expect(texts[2]).toMatch(/missing\/dir/);
    expect(texts[3]).toMatch(/steps\.0: expected a command string/);
    for (const text of [...texts, w.stderr]) {
      expect(text).not.toMatch(/jw-step|read -r|kill -KILL/);
      expect(text).not.toMatch(/Invalid input(?!:)/);
    }
    expectNoStack(w.stderr);
    const lines = logLines(w.stderr).filter((l) => l.jobId === 'badstep' && l.level === 30);
    expect(lines.some((l) => String(l.msg).includes('steps.0: expected'))).toBe(true);
  });
});
