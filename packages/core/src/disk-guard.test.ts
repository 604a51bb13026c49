import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { DiskGuard, type FreeSpace, parseFreeSpaceLimit, readFreeSpace } from './disk-guard.js';
import type { Logger } from './logger.js';

const MiB = 1024 * 1024;

function logged() {
  const lines: string[] = [];
  const at = (level: string) => (_obj: unknown, msg?: string) => {
    lines.push(`${level} ${msg}`);
  };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { lines, logger };
}

describe('disk guard', () => {
  it('reads limits in bytes or as a share of the filesystem', () => {
    expect(parseFreeSpaceLimit('500MiB')).toEqual({ bytes: 500 * MiB });
    expect(parseFreeSpaceLimit('5%')).toEqual({ percent: 5 });
    expect(parseFreeSpaceLimit('0')).toEqual({ bytes: 0 });
    expect(() => parseFreeSpaceLimit('120%')).toThrow(/more than the whole/);
    expect(() => parseFreeSpaceLimit('lots')).toThrow(/not a size/);
    expect(DiskGuard.enabled({ bytes: 0 })).toBe(false);
    expect(DiskGuard.enabled({ percent: 0 })).toBe(false);
    expect(DiskGuard.enabled({ percent: 1 })).toBe(true);
  });

  it('holds below the limit and clears above it, logging each change once', async () => {
    let space: FreeSpace = { freeBytes: 100 * MiB, totalBytes: 1000 * MiB };
    const { lines, logger } = logged();
    const guard = new DiskGuard({
      dir: '/ws',
      min: { percent: 5 },
      read: async () => space,
      logger,
    });
    expect(await guard.check()).toBeUndefined();
    space = { freeBytes: 40 * MiB, totalBytes: 1000 * MiB };
    const reason = await guard.check();
    expect(reason).toMatch(/40\.0 MiB free on the workspaces filesystem \(\/ws\), below the 5%/);
    expect(guard.holding).toBe(reason);
    await guard.check();
    space = { freeBytes: 60 * MiB, totalBytes: 1000 * MiB };
    expect(await guard.check()).toBeUndefined();
    expect(guard.holding).toBeUndefined();
    expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('info'))).toEqual([
      'info disk guard cleared: taking work again',
    ]);
  });

  it('keeps its last answer when the free space cannot be read', async () => {
    let fail = false;
    const guard = new DiskGuard({
      dir: '/ws',
      min: { bytes: 10 },
      read: async () => {
        if (fail) throw new Error('EIO');
        return { freeBytes: 1, totalBytes: 100 };
      },
    });
    expect(await guard.check()).toBeDefined();
    fail = true;
    expect(await guard.check()).toBeDefined();
  });

  it('waits for room, gives up when stopped, and watches while the worker waits for work', async () => {
    let free = 0;
    const guard = new DiskGuard({
      dir: '/ws',
      min: { bytes: 10 },
      read: async () => ({ freeBytes: free, totalBytes: 100 }),
    });
    await guard.check();
    const stop = new AbortController();
    const waiting = guard.waitForRoom(10, stop.signal);
    free = 50;
    expect(await waiting).toBe(true);
    free = 0;
    let held = 0;
    const unwatch = guard.watch(10, () => held++);
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (held >= 2) {
          clearInterval(t);
          resolve();
        }
      }, 5);
    });
    unwatch();
    const cut = guard.waitForRoom(10_000, stop.signal);
    stop.abort();
    expect(await cut).toBe(false);
  });

  it('reads the real free space of a filesystem', async () => {
    const space = await readFreeSpace(os.tmpdir());
    expect(space.totalBytes).toBeGreaterThan(0);
    expect(space.freeBytes).toBeGreaterThanOrEqual(0);
    expect(space.freeBytes).toBeLessThanOrEqual(space.totalBytes);
  });
});
