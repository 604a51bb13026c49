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

const LINK = 0x8000;

/**
 * Relative path → state of every file and link in a tree (directories are implied). It
 * is what a job holds for its whole run, one record per file, so it is kept compact:
 * names by directory (the listing's own name strings, no joined path per file) and the
 * numbers in typed columns, about 70 bytes a file against 190 for a Map of objects.
 */
export class Snapshot implements Iterable<[string, FileState]> {
  readonly #dirs = new Map<string, Map<string, number>>();
  readonly #targets = new Map<number, string>();
  #rows = 0;
  #sizes = new Float64Array(64);
  #mtimes = new Float64Array(64);
  #modes = new Uint16Array(64);

  get size(): number {
    return this.#rows;
  }

  /** `rel` is split into its directory and name; `setIn` takes them as a walk has them. */
  set(rel: string, state: FileState): this {
    const cut = rel.lastIndexOf('/');
    return this.setIn(cut < 0 ? '' : rel.slice(0, cut), rel.slice(cut + 1), state);
  }

  setIn(parent: string, name: string, state: FileState): this {
    let names = this.#dirs.get(parent);
    if (!names) {
      names = new Map();
      this.#dirs.set(parent, names);
    }
    let row = names.get(name);
    if (row === undefined) {
      row = this.#rows++;
      if (row === this.#sizes.length) this.#grow();
      names.set(name, row);
    }
    this.#sizes[row] = state.size;
    this.#mtimes[row] = state.mtimeMs;
    this.#modes[row] = (state.mode & 0o7777) | (state.kind === 'symlink' ? LINK : 0);
    if (state.target !== undefined) this.#targets.set(row, state.target);
    else this.#targets.delete(row);
    return this;
  }

  get(rel: string): FileState | undefined {
    const cut = rel.lastIndexOf('/');
    return this.getIn(cut < 0 ? '' : rel.slice(0, cut), rel.slice(cut + 1));
  }

  getIn(parent: string, name: string): FileState | undefined {
    const row = this.#dirs.get(parent)?.get(name);
    return row === undefined ? undefined : this.#stateOf(row);
  }

  has(rel: string): boolean {
    return this.get(rel) !== undefined;
  }

  *[Symbol.iterator](): IterableIterator<[string, FileState]> {
    for (const [parent, names] of this.#dirs)
      for (const [name, row] of names)
        yield [parent ? `${parent}/${name}` : name, this.#stateOf(row)];
  }

  entries(): IterableIterator<[string, FileState]> {
    return this[Symbol.iterator]();
  }

  #stateOf(row: number): FileState {
    const bits = this.#modes[row]!;
    const target = this.#targets.get(row);
    return {
      kind: bits & LINK ? 'symlink' : 'file',
      size: this.#sizes[row]!,
      mtimeMs: this.#mtimes[row]!,
      mode: bits & 0o7777,
      ...(target === undefined ? {} : { target }),
    };
  }

  #grow(): void {
    const n = this.#sizes.length * 2;
    const sizes = new Float64Array(n);
    const mtimes = new Float64Array(n);
    const modes = new Uint16Array(n);
    sizes.set(this.#sizes);
    mtimes.set(this.#mtimes);
    modes.set(this.#modes);
    this.#sizes = sizes;
    this.#mtimes = mtimes;
    this.#modes = modes;
  }
}

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
  const snapshot = new Snapshot();
  await forEachAsync(walkTree(root), concurrency, async (entry) => {
    if (!isFileOrLink(entry)) return;
    const state = await stateAt(entry);
    if (state) snapshot.setIn(entry.parent, entry.dirent.name, state);
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
    if (now) list.add(entry.rel, before.getIn(entry.parent, entry.dirent.name), now);
  });
  return list.settle(roots, concurrency);
}
