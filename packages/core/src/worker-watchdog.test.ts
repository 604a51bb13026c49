import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { STEP_TOKEN_VAR } from './process-reaper.js';
import { WATCHDOG_SCRIPT } from './worker-watchdog.js';

/** A `sleep` in a group of its own, with `env`. */
function sleeper(env: Record<string, string> = {}) {
  const child = spawn('sleep', ['300'], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  child.unref();
  return child;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the worker watchdog', () => {
  it('once its pipe ends, kills the groups it was told of and still holds, and the tokens of its prefix', async () => {
    const prefix = 'abc123abc123';
    const kept = sleeper();
    const forgotten = sleeper();
    const tokened = sleeper({ [STEP_TOKEN_VAR]: `${prefix}ffff` });
    const other = sleeper({ [STEP_TOKEN_VAR]: 'def456def456ffff' });
    const all = [kept, forgotten, tokened, other];
    try {
      const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'jw-watchdog', prefix], {
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      watchdog.stdin.write(`+ ${forgotten.pid}\n+ ${kept.pid}\n+ 999999\n- ${forgotten.pid}\n`);
      // The worker is gone: its end of the pipe closes.
      watchdog.stdin.end();
      await once(watchdog, 'exit');
      for (const c of [kept, tokened])
        if (c.exitCode === null && c.signalCode === null) await once(c, 'exit');
      expect(kept.signalCode).toBe('SIGKILL');
      expect(tokened.signalCode).toBe('SIGKILL');
      expect(alive(forgotten.pid!)).toBe(true);
      expect(alive(other.pid!)).toBe(true);
    } finally {
      for (const c of all) if (alive(c.pid!)) process.kill(c.pid!, 'SIGKILL');
    }
  });
});
