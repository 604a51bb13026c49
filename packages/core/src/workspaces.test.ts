import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
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
