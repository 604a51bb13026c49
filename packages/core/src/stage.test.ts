import {
  chmod,
  lstat,
  mkdir,
  readFile,
  readlink,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { takeSnapshot } from './snapshot.js';
import { stageJob } from './stage.js';
import { createWorkspace } from './workspaces.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

describe('stageJob', () => {
  it('copies the tree minus results/, keeping modes, mtimes and internal links', async () => {
    const jobDir = await box.makeJob(
      'j',
      { steps: ['true'] },
      {
        'a/b/c.txt': 'deep',
        'run.sh': '#!/bin/sh\n',
        'results/old.log': 'x',
        'sub/results/keep.txt': 'kept',
      },
    );
    await chmod(path.join(jobDir, 'run.sh'), 0o750);
    const old = new Date('2020-01-02T03:04:05Z');
    await utimes(path.join(jobDir, 'a/b/c.txt'), old, old);
    await symlink('a/b/c.txt', path.join(jobDir, 'link'));
    const ws = await createWorkspace(box.workspacesDir, 'j');
    expect(path.basename(ws)).toMatch(/^j-/);
    const summary = await stageJob(jobDir, ws);
    expect(summary).toMatchObject({ files: 4, links: 1 });
    expect(new Map(summary.snapshot)).toEqual(new Map(await takeSnapshot(ws)));
    expect(await readFile(path.join(ws, 'a/b/c.txt'), 'utf8')).toBe('deep');
    expect((await stat(path.join(ws, 'run.sh'))).mode & 0o777).toBe(0o750);
    expect((await stat(path.join(ws, 'a/b/c.txt'))).mtime.getTime()).toBe(old.getTime());
    expect(await readlink(path.join(ws, 'link'))).toBe('a/b/c.txt');
    expect((await lstat(path.join(ws, 'link'))).isSymbolicLink()).toBe(true);
    await expect(stat(path.join(ws, 'results'))).rejects.toThrow();
    expect(await readFile(path.join(ws, 'sub/results/keep.txt'), 'utf8')).toBe('kept');
  });

  it('copies links out of the job dir as links, following none of them (SPEC 4)', async () => {
    const outside = path.join(box.root, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret'), 'do not read');
    const jobDir = await box.makeJob('j', { steps: ['true'] });
    await symlink(path.join(outside, 'secret'), path.join(jobDir, 'absolute'));
    await symlink('../../outside/secret', path.join(jobDir, 'relative'));
    await symlink(outside, path.join(jobDir, 'dir-out'));
    await mkdir(path.join(jobDir, 'sub/sub2'), { recursive: true });
    await symlink('../..', path.join(jobDir, 'sub/sub2/d'));
    await symlink('sub/sub2/d/..', path.join(jobDir, 'through'));
    const ws = await createWorkspace(box.workspacesDir, 'j');
    const summary = await stageJob(jobDir, ws);
    expect(summary).toMatchObject({ files: 1, links: 5 });
    for (const [name, target] of [
      ['absolute', path.join(outside, 'secret')],
      ['relative', '../../outside/secret'],
      ['dir-out', outside],
      ['sub/sub2/d', '../..'],
      ['through', 'sub/sub2/d/..'],
    ]) {
      expect((await lstat(path.join(ws, name!))).isSymbolicLink()).toBe(true);
      expect(await readlink(path.join(ws, name!))).toBe(target);
    }
  });

  it('copies a large tree', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 500; i++) files[`d${i % 10}/f${i}.txt`] = `file ${i}`;
    const jobDir = await box.makeJob('big', { steps: ['true'] }, files);
    const ws = await createWorkspace(box.workspacesDir, 'big');
    const summary = await stageJob(jobDir, ws);
    expect(summary.files).toBe(501);
    expect(await readFile(path.join(ws, 'd7/f497.txt'), 'utf8')).toBe('file 497');
    // The snapshot taken on the way is the staged workspace as a walk of it finds it.
    expect(new Map(summary.snapshot)).toEqual(new Map(await takeSnapshot(ws)));
  });
});
