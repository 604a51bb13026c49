import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { forEachLimit } from './pool.js';
import { NO_FOLLOW } from './results-dir.js';
import { forEachAsync, type WalkEntry, walkTree } from './walk.js';

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

/** The state a snapshot records of an lstat result. */
export function fileStateOf(info: Stats): FileState {
  return {
    kind: info.isSymbolicLink() ? 'symlink' : 'file',
    size: info.size,
    mtimeMs: info.mtimeMs,
    mode: info.mode & 0o7777,
  };
}

/** The state of one file or link of a tree; undefined when it went away while we looked. */
async function stateAt(entry: WalkEntry): Promise<FileState | undefined> {
  const info = await lstat(entry.abs).catch(() => undefined);
  if (!info) return undefined;
  const state = fileStateOf(info);
  if (state.kind === 'symlink') state.target = await readlink(entry.abs);
  return state;
}

const isFileOrLink = (entry: WalkEntry) => entry.dirent.isFile() || entry.dirent.isSymbolicLink();

export async function takeSnapshot(root: string, concurrency = 32): Promise<Snapshot> {
  const snapshot: Snapshot = new Map();
  await forEachAsync(walkTree(root), concurrency, async (entry) => {
    if (!isFileOrLink(entry)) return;
    const state = await stateAt(entry);
    if (state) snapshot.set(entry.rel, state);
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

type Verdict = 'added' | 'modified' | 'undecided' | undefined;

/** Size, mode and link target decide where they can; a moved mtime alone is `undecided`. */
function judge(was: FileState | undefined, now: FileState): Verdict {
  if (!was || was.kind !== now.kind) return was ? 'modified' : 'added';
  if (now.kind === 'symlink') return was.target !== now.target ? 'modified' : undefined;
  if (was.size !== now.size || was.mode !== now.mode) return 'modified';
  return was.mtimeMs !== now.mtimeMs ? 'undecided' : undefined;
}

/** Collects verdicts; undecided files are hashed against their staged source at the end. */
class ChangeList {
  readonly #changes: Change[] = [];
  readonly #undecided: [string, FileState][] = [];

  add(rel: string, was: FileState | undefined, now: FileState): void {
    const verdict = judge(was, now);
    if (verdict === 'undecided') this.#undecided.push([rel, now]);
    else if (verdict)
      this.#changes.push({ path: rel, change: verdict, kind: now.kind, mode: now.mode });
  }

  async settle(
    roots: { workspace: string; source: string },
    concurrency: number,
  ): Promise<Change[]> {
    const changes = this.#changes;
    await forEachLimit(this.#undecided, concurrency, async ([rel, now]) => {
      const [a, b] = await Promise.all([
        sha256File(path.join(roots.workspace, rel)),
        sha256File(path.join(roots.source, rel)).catch(() => ''),
      ]);
      if (a !== b) changes.push({ path: rel, change: 'modified', kind: now.kind, mode: now.mode });
    });
    return changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  }
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
  const list = new ChangeList();
  for (const [rel, now] of after) list.add(rel, before.get(rel), now);
  return list.settle(roots, concurrency);
}

/**
 * `diffSnapshots(before, await takeSnapshot(workspace))` without holding the second
 * snapshot: each file of the workspace is judged as the walk finds it.
 */
export async function findChanges(
  before: Snapshot,
  roots: { workspace: string; source: string },
  concurrency = 8,
): Promise<Change[]> {
  const list = new ChangeList();
  await forEachAsync(walkTree(roots.workspace), 32, async (entry) => {
    if (!isFileOrLink(entry)) return;
    const now = await stateAt(entry);
    if (now) list.add(entry.rel, before.get(entry.rel), now);
  });
  return list.settle(roots, concurrency);
}
