import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * `chattr +i` makes a dir refuse every change, even root's (chmod does not stop root).
 * It needs root and a file system that has the flag (ext4 does, tmpfs does not).
 */
export const canChattr = await (async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'jw-chattr-'));
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
})();

export function setImmutable(dir: string, on: boolean): void {
  execFileSync('chattr', [on ? '+i' : '-i', dir]);
}

/** Runs `body` while `dir` cannot be changed. */
export async function immutable(dir: string, body: () => Promise<void>): Promise<void> {
  setImmutable(dir, true);
  try {
    await body();
  } finally {
    setImmutable(dir, false);
  }
}
