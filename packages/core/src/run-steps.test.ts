import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, exists, type Sandbox } from '@jw/testing/fs';
import { pidAlive as alive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Step } from './job-definition.js';
import { runStep, type StepHandler } from './run-steps.js';
import { StepLog } from './step-log.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

const step = (run: string, extra: Partial<Step> = {}): Step => ({
  index: 0,
  name: run,
  run,
  env: {},
  continueOnError: false,
  ...extra,
});

async function runOnly(
  s: Step,
  signal = new AbortController().signal,
  handlers?: Record<string, StepHandler>,
) {
  const log = await StepLog.create(box.root, s.index);
  try {
    return await runStep(s, {
      workspace: box.workspacesDir,
      env: { PATH: process.env.PATH ?? '' },
      log,
      signal,
      killGraceMs: 300,
      ...(handlers ? { handlers } : {}),
    });
  } finally {
    await log.close();
  }
}

async function run(s: Step, signal?: AbortSignal, handlers?: Record<string, StepHandler>) {
  const outcome = await runOnly(s, signal, handlers);
  return { outcome, log: await readFile(path.join(box.root, `step_${s.index}.log`), 'utf8') };
}

describe('runStep', () => {
  it('interleaves stdout and stderr in the log as produced', async () => {
    const { outcome, log } = await run(step('echo one; echo two >&2; echo three; echo four >&2'));
    expect(outcome).toMatchObject({ status: 'success', exitCode: 0, signal: null });
    expect(log).toBe('one\ntwo\nthree\nfour\n');
  });

  it('keeps the log open after stdout closes early and still records later stderr', async () => {
    const { log } = await run(step('echo out; exec 1>&-; sleep 0.2; echo late-stderr >&2'));
    expect(log).toBe('out\nlate-stderr\n');
  });

  it('reports a failing exit code and a signal', async () => {
    expect((await run(step('exit 3'))).outcome).toMatchObject({
      status: 'failed',
      exitCode: 3,
      signal: null,
    });
    expect((await run(step('kill -KILL $$'))).outcome).toMatchObject({
      status: 'failed',
      exitCode: null,
      signal: 'SIGKILL',
    });
  });

  it('reports a step whose cwd is missing as an error, without throwing', async () => {
    const { outcome } = await run(step('true', { cwd: 'missing' }));
    expect(outcome.status).toBe('error');
    expect(outcome.error).toBe(
      'cannot start the step: its cwd missing is not a directory in the workspace',
    );
    // The internal wrapper never shows in a text meant for people.
    expect(outcome.error).not.toMatch(/jw-step|read -r/);
  });

  it('runs in the step cwd with the given env only', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(box.workspacesDir, 'sub'));
    const s = step('pwd; echo "$ONLY"; echo "${HOME:-no-home}"', { cwd: 'sub' });
    const log = await StepLog.create(box.root, 0);
    await runStep(s, {
      workspace: box.workspacesDir,
      env: { ONLY: 'yes', PATH: process.env.PATH ?? '' },
      log,
      signal: new AbortController().signal,
      killGraceMs: 100,
    });
    await log.close();
    expect(await readFile(log.file, 'utf8')).toBe(
      `${path.join(box.workspacesDir, 'sub')}\nyes\nno-home\n`,
    );
  });

  it('on time-out kills the whole process group, backgrounded grandchildren included', async () => {
    const marker = path.join(box.root, 'marker');
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort('timeout'), 300);
    const { outcome } = await run(step(`(sleep 2; touch ${marker}) & wait`), controller.signal);
    expect(outcome).toMatchObject({ status: 'timeout', stoppedBy: 'timeout' });
    expect(Date.now() - started).toBeLessThan(1500);
    await new Promise((r) => setTimeout(r, 2300));
    expect(await exists(marker)).toBe(false);
  });

  it('escalates to SIGKILL when the group ignores SIGTERM', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort('cancel'), 200);
    const { outcome } = await run(step("trap '' TERM; sleep 5 & wait; sleep 5"), controller.signal);
    expect(outcome.status).toBe('cancelled');
    expect(outcome.durationMs).toBeLessThan(2000);
  });

  it('kills what a successful step left running in the background', async () => {
    const marker = path.join(box.root, 'bg-marker');
    const { outcome } = await run(step(`(sleep 1; touch ${marker}) > /dev/null 2>&1 &`));
    expect(outcome.status).toBe('success');
    await new Promise((r) => setTimeout(r, 1300));
    expect(await exists(marker)).toBe(false);
  });

  it('streams a flood of output to disk without holding it in memory', async () => {
    const before = process.memoryUsage().rss;
    const outcome = await runOnly(step('head -c 268435456 /dev/zero'));
    expect(outcome.status).toBe('success');
    expect((await stat(path.join(box.root, 'step_0.log'))).size).toBe(268435456);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('runs a uses-step handler, logging into the step log', async () => {
    const handlers: Record<string, StepHandler> = {
      greet: async ({ with: w, log }) => {
        log.write(`hello ${String(w.who)}\n`);
      },
      fail: async () => ({ exitCode: 4 }),
      boom: async () => {
        throw new Error('kaboom');
      },
    };
    const s = {
      index: 0,
      name: 'greet',
      uses: 'greet',
      with: { who: 'jw' },
      env: {},
      continueOnError: false,
    };
    const ok = await run(s, undefined, handlers);
    expect(ok.outcome.status).toBe('success');
    expect(ok.log).toBe('hello jw\n');
    expect((await run({ ...s, uses: 'fail' }, undefined, handlers)).outcome).toMatchObject({
      status: 'failed',
      exitCode: 4,
    });
    const boom = await run({ ...s, uses: 'boom' }, undefined, handlers);
    expect(boom.outcome).toMatchObject({ status: 'failed', error: 'kaboom' });
    expect(boom.log).toContain('kaboom');
  });
});

describe('a step whose worker dies', () => {
  it('is killed with its whole group as soon as the worker is SIGKILLed, with no polling', async () => {
    const waitFor = async (
      ok: () => boolean | Promise<boolean>,
      { timeoutMs }: { timeoutMs: number },
    ) => {
      const until = Date.now() + timeoutMs;
      while (!(await ok())) {
        if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const pidFile = path.join(box.root, 'pids');
    // A worker process of its own that runs one long step: the step and a grandchild.
    const script = `
      import { runStep, StepLog } from ${JSON.stringify(path.resolve(__dirname, '../dist/index.js'))};
      const log = await StepLog.create(${JSON.stringify(box.root)}, 0);
      await runStep({ index: 0, name: 's', env: {}, continueOnError: false,
        run: 'sleep 300 & echo "$$ $!" > ${pidFile}; wait' },
        { workspace: ${JSON.stringify(box.workspacesDir)}, env: { PATH: process.env.PATH },
          log, signal: new AbortController().signal, killGraceMs: 300 });`;
    const worker = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: 'ignore',
    });
    await waitFor(async () => (await readFile(pidFile, 'utf8').catch(() => '')).includes(' '), {
      timeoutMs: 30_000,
    });
    const pids = (await readFile(pidFile, 'utf8')).trim().split(' ').map(Number);
    expect(pids.every(alive)).toBe(true);
    worker.kill('SIGKILL');
    await once(worker, 'exit');
    await waitFor(() => !pids.some(alive), { timeoutMs: 10_000 });
  });
});
