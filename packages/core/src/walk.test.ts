import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forEachAsync, type WalkEntry, walkTree } from './walk.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(() => box.cleanup());

async function all(root: string, options = {}): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  for await (const entry of walkTree(root, options)) out.push(entry);
  return out;
}

describe('walkTree', () => {
  it('yields and enters each directory before anything inside it, following no link', async () => {
    const root = path.join(box.root, 'tree');
    await mkdir(path.join(root, 'a/b/c'), { recursive: true });
    await mkdir(path.join(root, 'skip/me'), { recursive: true });
    await mkdir(path.join(box.root, 'outside'));
    await writeFile(path.join(box.root, 'outside/secret'), 'x');
    for (const f of ['top.txt', 'a/1.txt', 'a/b/2.txt', 'a/b/c/3.txt', 'skip/me/4.txt'])
      await writeFile(path.join(root, f), f);
    await symlink(path.join(box.root, 'outside'), path.join(root, 'a/out'));
    const entered: string[] = [];
    const entries = await all(root, {
      skip: (rel: string) => rel === 'skip',
      enter: async (dir: WalkEntry) => void entered.push(dir.rel),
    });
    const order = entries.map((e) => e.rel);
    expect([...order].sort()).toEqual(
      ['a', 'a/1.txt', 'a/b', 'a/b/2.txt', 'a/b/c', 'a/b/c/3.txt', 'a/out', 'top.txt'].sort(),
    );
    for (const entry of entries) {
      const parent = path.posix.dirname(entry.rel);
      if (parent !== '.') expect(order.indexOf(parent)).toBeLessThan(order.indexOf(entry.rel));
    }
    expect(entered.sort()).toEqual(['a', 'a/b', 'a/b/c']);
    expect(entries.find((e) => e.rel === 'a/out')?.dirent.isSymbolicLink()).toBe(true);
  });

  it('runs a bounded number of calls at once and ends with the first failure', async () => {
    const root = path.join(box.root, 'flat');
    await mkdir(root);
    for (let i = 0; i < 200; i++) await writeFile(path.join(root, `f${i}`), '');
    let inFlight = 0;
    let most = 0;
    let seen = 0;
    await forEachAsync(walkTree(root), 8, async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      seen++;
    });
    expect(seen).toBe(200);
    expect(most).toBeLessThanOrEqual(8);
    await expect(
      forEachAsync(walkTree(root), 4, async (e) => {
        if (e.rel === 'f100') throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(
      forEachAsync(walkTree(path.join(root, 'none')), 4, async () => {}),
    ).rejects.toThrow(/ENOENT/);
  });
});
