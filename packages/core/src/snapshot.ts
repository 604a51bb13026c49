import { createHash } from 'node:crypto';
import { lstat, open, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { forEachLimit } from './pool.js';
import { NO_FOLLOW } from './results-dir.js';
import { walk } from './walk.js';

export interface FileState {
  kind: 'file' | 'symlink';
  size: number;
  mtimeMs: number;
  mode: number;
  /** Link target, for symlinks. */
  target?: string;
}

/** Relative path → state of every file and link in a tree (directories are implied). */
export type Snapshot = Map<string, FileState>;

export interface Change {
  path: string;
  change: 'added' | 'modified';
  kind: 'file' | 'symlink';
  mode: number;
}

export async function takeSnapshot(root: string, concurrency = 32): Promise<Snapshot> {
  const entries = (await walk(root)).filter((e) => e.dirent.isFile() || e.dirent.isSymbolicLink());
  const snapshot: Snapshot = new Map();
  await forEachLimit(entries, concurrency, async (entry) => {
    const info = await lstat(entry.abs).catch(() => undefined);
    if (!info) return; // removed while we looked: not there
    const state: FileState = {
      kind: info.isSymbolicLink() ? 'symlink' : 'file',
      size: info.size,
      mtimeMs: info.mtimeMs,
      mode: info.mode & 0o7777,
    };
    if (state.kind === 'symlink') state.target = await readlink(entry.abs);
    snapshot.set(entry.rel, state);
  });
  return snapshot;
}

/** The file's hash; a link in its place is not followed (ELOOP). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, NO_FOLLOW.read);
  try {
    await pipeline(handle.createReadStream({ autoClose: false }), hash);
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/**
 * What the steps added or changed. Size, mtime and mode decide where they can; a
 * file whose size is the same but whose mtime moved is hashed against its staged
 * source (`sourceRoot`), so a rewrite with the same bytes is not a change.
 */
export async function diffSnapshots(
  before: Snapshot,
  after: Snapshot,
  roots: { workspace: string; source: string },
  concurrency = 8,
): Promise<Change[]> {
  const changes: Change[] = [];
  const undecided: [string, FileState][] = [];
  for (const [rel, now] of after) {
    const was = before.get(rel);
    const base = { path: rel, kind: now.kind, mode: now.mode };
    if (!was || was.kind !== now.kind)
      changes.push({ ...base, change: was ? 'modified' : 'added' });
    else if (now.kind === 'symlink') {
      if (was.target !== now.target) changes.push({ ...base, change: 'modified' });
    } else if (was.size !== now.size || was.mode !== now.mode)
      changes.push({ ...base, change: 'modified' });
    else if (was.mtimeMs !== now.mtimeMs) undecided.push([rel, now]);
  }
  await forEachLimit(undecided, concurrency, async ([rel, now]) => {
    const [a, b] = await Promise.all([
      sha256File(path.join(roots.workspace, rel)),
      sha256File(path.join(roots.source, rel)).catch(() => ''),
    ]);
    if (a !== b) changes.push({ path: rel, change: 'modified', kind: now.kind, mode: now.mode });
  });
  return changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
