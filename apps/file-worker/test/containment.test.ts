import { chmod, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { pidAlive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
beforeEach(async () => {
  box = await createSandbox('jw-contain-');
  q = queue(box);
});
afterEach(async () => {
  await killWorkers();
  await box.cleanup();
});

/** Runs one job to its end on a one-shot worker; resolves with the worker's log. */
async function runOne(id: string, job: unknown, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  await box.makeJob(id, job);
  await q.drop(`${id}.json`, { id });
  const w = startWorker(box, ['--max-jobs', '1', ...args], env);
  expect((await w.exited).code).toBe(0);
  return w.stderr;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

const PY = 'python3 -c';

describe('limits', () => {
  it.each([
    ['memoryMiB', 100, `${PY} "b = bytearray(300 * 1024 * 1024)"`, 'memory limit 100 MiB'],
    ['cpuSeconds', 1, 'while :; do :; done', 'CPU limit 1 s'],
    [
      'openFiles',
      20,
      `${PY} "fs = [open('/dev/null') for _ in range(100)]"`,
      'open files limit 20',
    ],
    ['fileSizeMiB', 1, 'head -c 3000000 /dev/zero > big', 'file size limit 1 MiB'],
  ])('a step over its %s fails naming the limit', async (name, value, run, named) => {
    await runOne('lim', { steps: [{ run, limits: { [name]: value } }] });
    const result = await q.result('lim');
    expect(result).toMatchObject({ status: 'failed', errorCode: 'STEP_FAILED' });
    expect(result.error).toContain(named);
    const m = await box.readResult('lim');
    expect(m.steps[0].error).toContain(`${named} reached`);
  });

  it("applies the job's limits and the worker's defaults, and refuses more than its bound", async () => {
    await runOne('job', {
      limits: { memoryMiB: 100 },
      steps: [`${PY} "b = bytearray(300 * 1024 * 1024)"`],
    });
    expect((await q.result('job')).error).toContain('memory limit 100 MiB');
    await runOne('dflt', { steps: ['while :; do :; done'] }, ['--step-cpu', '1']);
    expect((await q.result('dflt')).error).toContain('CPU limit 1 s');
    await runOne('more', { steps: [{ run: 'true', limits: { memoryMiB: 900 } }] }, [
      '--max-step-memory',
      '512',
    ]);
    expect(await q.result('more')).toMatchObject({ status: 'error', errorCode: 'BAD_JOB' });
    expect((await q.result('more')).error).toMatch(
      /memoryMiB 900, more than this worker allows \(512\)/,
    );
  });

  it('refuses at start a default above its bound, and a processes limit for root steps', async () => {
    const high = startWorker(box, ['--step-memory', '600', '--max-step-memory', '500']);
    expect((await high.exited).code).toBe(2);
    const root = startWorker(box, ['--step-processes', '50']);
    expect((await root.exited).code).toBe(2);
    expect(root.stderr).toContain('--run-as');
  });
});

describe('secrets', () => {
  it("never reach a file under results/ nor the worker's log", async () => {
    const token = 'tok-9f8e7d6c5b4a';
    const listed = 'listed-0a1b2c3d';
    const log = await runOne('sec', {
      env: { API_TOKEN: token, CONN: listed },
      secrets: ['CONN'],
      steps: [
        'echo "out $API_TOKEN"; echo "err $API_TOKEN" >&2',
        // Split across two writes, on both streams.
        `printf "tok-9f8e"; sleep 0.3; printf "7d6c5b4a\\n"; printf "listed-0a1b" >&2; sleep 0.3; printf "2c3d\\n" >&2`,
        'echo "$CONN" > leaked.txt; exit 3',
      ],
    });
    expect(await box.readLog('sec', 0)).toBe('out ***\nerr ***\n');
    expect(await box.readLog('sec', 1)).toBe('***\n***\n');
    const results = path.join(box.jobsDir, 'sec', 'results');
    // The artifact the step wrote is the job's own output, not a log: it is copied as is.
    for (const file of await filesUnder(results)) {
      if (file.endsWith('leaked.txt')) continue;
      const text = await readFile(file, 'utf8');
      expect(text, file).not.toContain(token);
      expect(text, file).not.toContain(listed);
    }
    expect(log).not.toContain(token);
    expect(log).not.toContain(listed);
    expect(await q.result('sec')).toMatchObject({ status: 'failed', exitCode: 3 });
  });
});

describe('escaped processes', () => {
  const ESCAPE = (pids: string) =>
    `setsid sleep 3001 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.a; ` +
    `( ( sleep 3002 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.b ) & ); `;
  const pidsOf = async (pids: string) =>
    [await readFile(`${pids}.a`, 'utf8'), await readFile(`${pids}.b`, 'utf8')].map(Number);

  it('a setsid daemon and a double fork are gone when the step ends', async () => {
    const pids = path.join(box.root, 'pids');
    await runOne('esc', { steps: [`${ESCAPE(pids)} sleep 0.5`] });
    expect(await q.result('esc')).toMatchObject({ status: 'success' });
    const [a, b] = await pidsOf(pids);
    expect(pidAlive(a!) || pidAlive(b!)).toBe(false);
  });

  // A one-shot worker starts its steps from node, a worker that takes more jobs from its
  // launcher (a small node process of its own, step-launcher.ts): both must die with it.
  it.each([
    ['started from node', ['--max-jobs', '1']],
    ['started from the launcher', ['--max-jobs', '0']],
  ])(
    'they are gone within seconds of a kill -9 of the worker, as is the group (%s)',
    async (_, args) => {
      const pids = path.join(box.root, 'pids');
      // Also one that stayed in the step's group with an emptied environment (no token).
      const bare = `env -i sleep 3004 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.c; `;
      await box.makeJob('kill', { steps: [`${ESCAPE(pids)} ${bare} sleep 3003`] });
      await q.drop('kill.json', { id: 'kill' });
      const w = startWorker(box, args);
      await waitFor(async () => (await readFile(`${pids}.c`, 'utf8').catch(() => '')).trim());
      await waitFor(async () => (await readFile(`${pids}.b`, 'utf8').catch(() => '')).trim());
      const [a, b] = await pidsOf(pids);
      const c = Number(await readFile(`${pids}.c`, 'utf8'));
      expect(pidAlive(a!) && pidAlive(b!) && pidAlive(c)).toBe(true);
      w.kill('SIGKILL');
      await w.exited;
      await waitFor(() => !pidAlive(a!) && !pidAlive(b!) && !pidAlive(c), 10_000);
    },
  );
});

describe('--run-as', () => {
  const asRoot = process.getuid?.() === 0;

  it.skipIf(!asRoot)(
    "runs steps as nobody in a workspace it owns; results stay the worker's",
    async () => {
      // mkdtemp makes the sandbox 0700: the step's user must be able to reach its workspace.
      await chmod(box.root, 0o755);
      const log = await runOne(
        'who',
        {
          steps: [
            'id -u; id -g; stat -c %u . ; touch made; (echo x > "$JW_RESULTS_DIR/sneaky") 2>/dev/null || echo refused',
          ],
        },
        ['--run-as', 'nobody'],
      );
      expect(log).toContain('nobody');
      expect(await box.readLog('who', 0)).toBe('65534\n65534\n65534\nrefused\n');
      const results = path.join(box.jobsDir, 'who', 'results');
      expect((await stat(path.join(results, 'result.json'))).uid).toBe(0);
      expect((await stat(path.join(results, 'made'))).uid).toBe(0);
    },
  );

  it.skipIf(!asRoot)('binds a processes limit for a non-root user', async () => {
    await chmod(box.root, 0o755);
    await runOne(
      'procs',
      {
        steps: [
          {
            run: 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait',
            limits: { processes: 5 },
          },
        ],
      },
      ['--run-as', 'nobody'],
    );
    const result = await q.result('procs');
    expect(result.status).toBe('failed');
    expect(result.error).toContain('processes limit 5');
  });

  it('refuses a user it cannot switch to (exit 2)', async () => {
    const w = startWorker(box, ['--run-as', 'no-such-user-jw']);
    expect((await w.exited).code).toBe(2);
    expect(w.stderr).toContain('no-such-user-jw');
  });
});
