import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWorkspace, removeDeadWorkspaces, removeWorkspace } from './workspaces.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(() => box.cleanup());

/** A workspace as a worker that has since died would have left it. */
async function deadWorkersWorkspace(jobId: string, change: Record<string, unknown> = {}) {
  const child = spawn('true');
  await once(child, 'exit');
  const ws = await createWorkspace(box.workspacesDir, jobId);
  await writeFile(path.join(ws, 'file.txt'), 'x');
  const owner = path.join(box.workspacesDir, `.${path.basename(ws)}.owner`);
  const record = JSON.parse(await readFile(owner, 'utf8'));
  await writeFile(owner, JSON.stringify({ ...record, pid: child.pid, ...change }));
  return ws;
}

describe('workspaces', () => {
  it('removes a workspace and its owner file', async () => {
    const ws = await createWorkspace(box.workspacesDir, 'j');
    expect((await readdir(box.workspacesDir)).length).toBe(2);
    await removeWorkspace(ws);
    expect(await readdir(box.workspacesDir)).toEqual([]);
  });

  it('removes a whole tree without following links, read-only dirs included', async () => {
    const ws = await createWorkspace(path.join(box.root, 'not-yet'), 'tree');
    const outside = path.join(box.root, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'keep.txt'), 'kept');
    for (let i = 0; i < 300; i++) {
      await mkdir(path.join(ws, `d${i % 7}/e${i % 3}`), { recursive: true });
      await writeFile(path.join(ws, `d${i % 7}/e${i % 3}/f${i}`), 'x');
    }
    await symlink(outside, path.join(ws, 'd1/out'));
    await mkdir(path.join(ws, 'locked/inner'), { recursive: true });
    await writeFile(path.join(ws, 'locked/inner/f'), 'x');
    await chmod(path.join(ws, 'locked'), 0o555);
    await removeWorkspace(ws);
    expect(await readdir(path.join(box.root, 'not-yet'))).toEqual([]);
    expect(await readFile(path.join(outside, 'keep.txt'), 'utf8')).toBe('kept');
    await removeWorkspace(ws); // already gone: nothing to do
  });

  it("removes only the workspaces of this host's dead processes", async () => {
    const dead = await deadWorkersWorkspace('dead');
    const live = await createWorkspace(box.workspacesDir, 'live');
    const remote = await deadWorkersWorkspace('remote', { hostname: 'another-host' });
    const unowned = path.join(box.workspacesDir, 'unowned-x');
    await mkdir(unowned);
    expect(await removeDeadWorkspaces(box.workspacesDir)).toEqual([dead]);
    const left = (await readdir(box.workspacesDir)).filter((n) => !n.startsWith('.'));
    expect(left.sort()).toEqual([path.basename(live), path.basename(remote), 'unowned-x'].sort());
  });

  it('takes a pid reused by a later process for a dead owner', async () => {
    // Our own pid, but with another start time: the owner was an earlier process.
    const ws = await createWorkspace(box.workspacesDir, 'reused');
    const owner = path.join(box.workspacesDir, `.${path.basename(ws)}.owner`);
    const record = JSON.parse(await readFile(owner, 'utf8'));
    expect(record.pidStartTime).toBeTruthy();
    await writeFile(owner, JSON.stringify({ ...record, pidStartTime: '1' }));
    expect(await removeDeadWorkspaces(box.workspacesDir)).toEqual([ws]);
  });
});
