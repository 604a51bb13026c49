import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type ProcessIdentity, processGone, selfIdentity } from './host.js';
import { randomHex } from './random-hex.js';
import { forEachAsync, walkTree } from './walk.js';

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
  const dir = path.join(
    path.resolve(workspacesDir),
    `${jobId}-${Date.now().toString(36)}${randomHex(3)}`,
  );
  const owner: OwnerRecord = {
    ...(await selfIdentity()),
    jobId,
    createdAt: new Date().toISOString(),
  };
  // Synchronous: the workspaces dir is the worker's own local disk (never the shared
  // drive), where these take microseconds and a trip through the thread pool costs more
  // than the call. The dir is made only when missing: no more path operations than needed.
  const record = JSON.stringify(owner);
  try {
    writeFileSync(ownerFile(dir), record);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(workspacesDir, { recursive: true });
    writeFileSync(ownerFile(dir), record);
  }
  mkdirSync(dir);
  return dir;
}

/** Unlinks in flight at once while a workspace is removed. */
const REMOVE_CONCURRENCY = 32;

/**
 * Removes a tree with a bounded number of operations in flight. `rm -r` of Node starts
 * one for every entry at once, and their completions then run in one turn of the event
 * loop: hundreds of ms at 10k files, seconds at 100k, enough to starve lease renewals.
 */
async function removeTree(root: string): Promise<void> {
  const dirs: string[] = [];
  try {
    const entries = walkTree(root, { enter: async (dir) => void dirs.push(dir.abs) });
    await forEachAsync(entries, REMOVE_CONCURRENCY, async (entry) => {
      if (!entry.dirent.isDirectory()) await unlink(entry.abs);
    });
    // Entered parents first: reversed, each directory is empty when its turn comes.
    for (const dir of dirs.reverse()) await rmdir(dir);
    await rmdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && dirs.length === 0) return;
    // Whatever the steps left in the way (a directory they made read-only, a late file).
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Removes a workspace and its progress file (`JW_PROGRESS`), then its owner file. */
export async function removeWorkspace(workspace: string): Promise<void> {
  await removeTree(workspace);
  const progressFile = path.join(path.dirname(workspace), `.${path.basename(workspace)}.progress`);
  await unlink(progressFile).catch(() => {});
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
