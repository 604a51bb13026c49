import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { pidAlive as alive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Step } from './job-definition.js';
import { effectiveLimits, type Limits, NO_LIMITS } from './limits.js';
import { runStep } from './run-steps.js';
import { stepSecrets } from './step-env.js';
import { StepLog } from './step-log.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

const step = (run: string): Step => ({ index: 0, name: 'x', run, env: {}, continueOnError: false });

async function run(
  command: string,
  extra: { limits?: Limits; secrets?: string[]; env?: Record<string, string> } = {},
) {
  const log = await StepLog.create(box.root, 0);
  try {
    const outcome = await runStep(step(command), {
      workspace: box.workspacesDir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...extra.env },
      log,
      signal: new AbortController().signal,
      killGraceMs: 300,
      ...(extra.limits ? { limits: extra.limits } : {}),
      ...(extra.secrets ? { secrets: extra.secrets } : {}),
    });
    return { outcome, log: await readFile(path.join(box.root, 'step_0.log'), 'utf8') };
  } finally {
    await log.close();
  }
}

describe('limits', () => {
  const policy = {
    defaults: { memoryMiB: 512 },
    max: { cpuSeconds: 60 },
    processesEnforceable: false,
  };

  it('merges worker defaults, job and step, and applies a bound nobody set', () => {
    expect(effectiveLimits(policy, { memoryMiB: 100 }, { openFiles: 64 }, 'step 0')).toEqual({
      memoryMiB: 100,
      openFiles: 64,
      cpuSeconds: 60,
    });
  });

  it('refuses a job that asks for more than the worker allows, or for what it cannot enforce', () => {
    expect(() => effectiveLimits(policy, { cpuSeconds: 61 }, undefined, 'step 0')).toThrow(
      /step 0 asks for cpuSeconds 61, more than this worker allows \(60\)/,
    );
    expect(() => effectiveLimits(policy, undefined, { processes: 5 }, 'step 0')).toThrow(
      /--run-as/,
    );
    expect(effectiveLimits(NO_LIMITS, undefined, { processes: 5 }, 's')).toEqual({ processes: 5 });
  });

  it('names the memory limit a python allocation hit', async () => {
    const { outcome } = await run(`python3 -c "b = bytearray(300 * 1024 * 1024)"`, {
      limits: { memoryMiB: 100 },
    });
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(/^memory limit 100 MiB reached/);
  });

  it('names the CPU limit of a busy loop', async () => {
    const { outcome } = await run('while :; do :; done', { limits: { cpuSeconds: 1 } });
    expect(outcome.error).toMatch(/^CPU limit 1 s reached/);
  });

  it('names the open files and file size limits', async () => {
    const files = await run(`python3 -c "fs = [open('/dev/null') for _ in range(100)]"`, {
      limits: { openFiles: 20 },
    });
    expect(files.outcome.error).toMatch(/^open files limit 20 reached/);
    const size = await run('head -c 3000000 /dev/zero > big', { limits: { fileSizeMiB: 1 } });
    expect(size.outcome.error).toMatch(/^file size limit 1 MiB reached/);
  });

  it('leaves a step under its limits alone', async () => {
    const { outcome } = await run('python3 -c "b = bytearray(10 * 1024 * 1024)"; echo ok', {
      limits: { memoryMiB: 200, cpuSeconds: 30, openFiles: 64, fileSizeMiB: 5 },
    });
    expect(outcome.status).toBe('success');
  });
});

describe('secrets', () => {
  it('masks them on stdout and stderr, also split across writes', async () => {
    const env = { API_TOKEN: 'tok-s3cr3t-value', PLAIN: 'visible' };
    const secrets = stepSecrets(env);
    expect(secrets).toEqual(['tok-s3cr3t-value']);
    const { outcome, log } = await run(
      'echo "out $API_TOKEN"; echo "err $API_TOKEN" >&2; printf "tok-s3c"; sleep 0.2; printf "r3t-value\\n"; echo "$PLAIN"; exit 3',
      { env, secrets },
    );
    expect(outcome.status).toBe('failed');
    expect(log).toBe('out ***\nerr ***\n***\nvisible\n');
  });

  it("lists the job's named secrets too", () => {
    expect(
      stepSecrets({ DB_PASSWORD: 'pw-123', CONN: 'conn-456', X_CREDENTIALS: 'cr-789' }, [
        'CONN',
      ]).sort(),
    ).toEqual(['conn-456', 'cr-789', 'pw-123']);
  });
});

describe('escaped processes', () => {
  it('kills a setsid daemon and a double fork when the step ends', async () => {
    const pids = path.join(box.root, 'pids');
    const { outcome } = await run(
      `setsid sleep 3001 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.a; ` +
        `( ( sleep 3002 >/dev/null 2>&1 </dev/null & echo $! > ${pids}.b ) & ); sleep 0.3`,
    );
    expect(outcome.status).toBe('success');
    const daemon = Number(await readFile(`${pids}.a`, 'utf8'));
    const orphan = Number(await readFile(`${pids}.b`, 'utf8'));
    expect(alive(daemon) || alive(orphan)).toBe(false);
  });
});
