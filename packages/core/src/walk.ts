import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

export interface WalkEntry {
  /** Relative path with `/` separators. */
  rel: string;
  /** `rel` of the directory it is in (`''` at the root), one string per directory. */
  parent: string;
  abs: string;
  dirent: Dirent;
}

export interface WalkOptions {
  /** Gets each relative path and can prune it (and everything below). */
  skip?: (rel: string, dirent: Dirent) => boolean;
  /** Awaited for each directory before anything inside it is listed (staging creates it here). */
  enter?: (entry: WalkEntry) => Promise<void>;
}

interface Listing {
  abs: string;
  rel: string;
  dirents: Dirent[];
}

function list(dir: { abs: string; rel: string }): Promise<Listing> {
  const listing = readdir(dir.abs, { withFileTypes: true }).then((dirents) => ({
    ...dir,
    dirents,
  }));
  listing.catch(() => {}); // read ahead: its failure is thrown where it is awaited
  return listing;
}

/**
 * Lists a tree depth-first without following links, one directory at a time (and the
 * next one read ahead), so that what is held is two directories' entries and the paths
 * of the directories still to visit, never the whole tree. A directory is yielded, and
 * `enter`ed, before anything inside it.
 */
export async function* walkTree(
  root: string,
  options: WalkOptions = {},
): AsyncGenerator<WalkEntry> {
  const pending: { abs: string; rel: string }[] = [];
  for (let next: Promise<Listing> | undefined = list({ abs: root, rel: '' }); next; ) {
    const dir = await next;
    const entries: WalkEntry[] = [];
    for (const dirent of dir.dirents) {
      const rel = dir.rel ? `${dir.rel}/${dirent.name}` : dirent.name;
      if (options.skip?.(rel, dirent)) continue;
      const entry: WalkEntry = {
        rel,
        parent: dir.rel,
        abs: path.join(dir.abs, dirent.name),
        dirent,
      };
      if (dirent.isDirectory()) {
        await options.enter?.(entry);
        pending.push({ abs: entry.abs, rel });
      }
      entries.push(entry);
    }
    const following = pending.pop();
    next = following && list(following);
    yield* entries;
  }
}

/**
 * Runs `fn` over the entries of an async source with at most `limit` in flight. File work
 * goes through libuv's thread pool: many small operations in flight beat one at a time,
 * and a bound keeps each turn of the event loop short, so lease and keepalive timers run.
 */
export async function forEachAsync<T>(
  items: AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  let failed: { error: unknown } | undefined;
  const lane = async () => {
    while (!failed) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (error) {
        failed ??= { error };
        return;
      }
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  if (failed) {
    await iterator.return?.(undefined).catch(() => {});
    throw failed.error;
  }
}
