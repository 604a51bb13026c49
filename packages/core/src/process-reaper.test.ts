import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { waitFor } from '@jw/testing/fs';
import { pidAlive } from '@jw/testing/process';
import { afterEach, describe, expect, it } from 'vitest';
import { forkCount, newStepToken, reapStep, STEP_TOKEN_VAR } from './process-reaper.js';

const left: number[] = [];
afterEach(() => {
  for (const pid of left.splice(0))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
});

/** A setsid daemon carrying `token`, started the way a step would: its pid and its shell's. */
async function daemonWith(token: string): Promise<{ pid: number; wrapper: number }> {
  const sh = spawn('/bin/sh', ['-c', 'setsid sleep 3001 >/dev/null 2>&1 </dev/null & echo $!'], {
    env: { PATH: process.env.PATH ?? '', [STEP_TOKEN_VAR]: token },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  sh.stdout.on('data', (d: Buffer) => {
    out += d;
  });
  await once(sh, 'exit');
  const pid = Number(out.trim());
  left.push(pid);
  // Until it is `sleep`: mid-exec (setsid → sleep) its environ can read empty.
  await waitFor(() => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep\0');
    } catch {
      return false;
    }
  });
  return { pid, wrapper: sh.pid! };
}

describe('reapStep', () => {
  it('reads only the pids allocated since the step started, and finds its daemon there', async () => {
    const token = newStepToken();
    const forks = (await forkCount())!;
    expect(forks).toBeGreaterThan(0);
    const { pid, wrapper } = await daemonWith(token);
    // A range that starts after the daemon's pid does not reach it: the filter is applied.
    expect(await reapStep(token, { first: pid + 1, forks })).toBe(0);
    expect(pidAlive(pid)).toBe(true);
    expect(await reapStep(token, { first: wrapper, forks })).toBeGreaterThanOrEqual(1);
    await waitFor(() => !pidAlive(pid));
  });

  it('reads every pid when more forks happened than there are pids', async () => {
    const token = newStepToken();
    const { pid } = await daemonWith(token);
    // A fork count from "long ago": the counter may have gone round, so no range is trusted.
    expect(await reapStep(token, { first: pid + 1, forks: -10_000_000 })).toBeGreaterThanOrEqual(1);
    await waitFor(() => !pidAlive(pid));
  });

  it('without a range reads every pid', async () => {
    const token = newStepToken();
    const { pid } = await daemonWith(token);
    expect(await reapStep(token)).toBeGreaterThanOrEqual(1);
    await waitFor(() => !pidAlive(pid));
  });
});
