import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ProcessIdentity, processGone, selfIdentity } from './host.js';

/** `.{workspace}.owner` beside each workspace: which process made it, so litter can be told apart. */
interface OwnerRecord extends ProcessIdentity {
  jobId: string;
  createdAt: string;
}

const ownerFile = (workspace: string) =>
  path.join(path.dirname(workspace), `.${path.basename(workspace)}.owner`);

/**
 * A fresh, private workspace path: `{workspacesDir}/{id}-{unique}`. Its owner file is
 * written first, so a workspace left by a killed worker is always recognised as its.
 */
export async function createWorkspace(workspacesDir: string, jobId: string): Promise<string> {
  await mkdir(workspacesDir, { recursive: true });
  const dir = path.join(
    path.resolve(workspacesDir),
    `${jobId}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
  );
  const owner: OwnerRecord = {
    ...(await selfIdentity()),
    jobId,
    createdAt: new Date().toISOString(),
  };
  await writeFile(ownerFile(dir), JSON.stringify(owner));
  await mkdir(dir);
  return dir;
}

/** Removes a workspace, then its owner file. */
export async function removeWorkspace(workspace: string): Promise<void> {
  await rm(workspace, { recursive: true, force: true });
  await unlink(ownerFile(workspace)).catch(() => {});
}

/**
 * Removes the workspaces (and their owner files) whose owner process is gone: it ran on
 * this host and no longer exists. Those of live workers, of other hosts sharing the dir,
 * and anything without an owner file are left alone. Returns the workspaces removed.
 */
export async function removeDeadWorkspaces(workspacesDir: string): Promise<string[]> {
  const names = await readdir(workspacesDir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const match = /^\.(.+)\.owner$/.exec(name);
    if (!match) continue;
    const owner = await readFile(path.join(workspacesDir, name), 'utf8').then(
      (text) => JSON.parse(text) as OwnerRecord,
      () => undefined,
    );
    if (!owner || typeof owner.pid !== 'number' || !(await processGone(owner))) continue;
    const workspace = path.join(workspacesDir, match[1]!);
    await removeWorkspace(workspace);
    removed.push(workspace);
  }
  return removed;
}
