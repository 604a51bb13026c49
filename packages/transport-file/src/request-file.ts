import { constants, type Stats } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { isValidJobId } from '@jw/core';
import { isJsonPrefix } from './json-prefix.js';

/** What a name in a queue folder is, judged without opening it. */
export type Entry =
  | { kind: 'gone' }
  /** A regular file, or a link to one inside the queue: `file` is what to read. */
  | { kind: 'file'; file: string; link: boolean; stats: Stats }
  /** Anything else (a directory, a FIFO, a socket, a device, a link out of the queue). */
  | { kind: 'bad'; reason: string; ino: number };

function typeOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSymbolicLink()) return 'a link';
  return 'not a regular file';
}

/**
 * Looks at `file` with lstat only: a FIFO or a device must never be opened (a read
 * would block for ever), a directory cannot be read, and a link is followed only to
 * a regular file that lies inside `root` (the queue's real path).
 */
export async function inspectEntry(file: string, root: string): Promise<Entry> {
  const stats = await lstat(file).catch(() => undefined);
  if (!stats) return { kind: 'gone' };
  if (stats.isFile()) return { kind: 'file', file, link: false, stats };
  if (!stats.isSymbolicLink())
    return { kind: 'bad', reason: `${typeOf(stats)}, not a file`, ino: stats.ino };
  const target = await realpath(file).catch(() => undefined);
  if (!target) return { kind: 'bad', reason: 'a link to nothing', ino: stats.ino };
  if (!target.startsWith(`${root}${path.sep}`))
    return { kind: 'bad', reason: 'a link out of the queue folder', ino: stats.ino };
  const targetStats = await lstat(target).catch(() => undefined);
  if (!targetStats) return { kind: 'gone' };
  if (!targetStats.isFile())
    return {
      kind: 'bad',
      reason: `a link to ${typeOf(targetStats)}, not to a file`,
      ino: stats.ino,
    };
  return { kind: 'file', file: target, link: true, stats: targetStats };
}

/**
 * Reads a file that `inspectEntry` found regular. `O_NONBLOCK | O_NOFOLLOW` and a
 * check of the opened descriptor guard against a swap in between (a FIFO or a link
 * put in its place): such a file is reported, never waited on.
 */
export async function readRegular(
  file: string,
): Promise<{ text: string; stats: Stats } | { bad: string } | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') return { bad: 'a link, not a file' };
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { bad: `${typeOf(stats)}, not a file` };
    return { text: await handle.readFile('utf8'), stats };
  } finally {
    await handle.close();
  }
}

/** Not JSON yet, but could become JSON as a writer goes on (a file cut off mid-way, or empty). */
export function looksUnfinished(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch {
    return isJsonPrefix(text);
  }
}

/** The request body: a file without an `id` takes its name (`hello.json` → `hello`). */
export function withFileId(text: string, name: string): string | Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value) && !('id' in value)) {
      return { ...(value as Record<string, unknown>), id: name.replace(/\.json$/, '') };
    }
  } catch {
    // Not JSON: core rejects it with the parse error.
  }
  return text;
}

/** The job id a request file names, when it is valid. */
export function jobIdOf(text: string, name: string): string | undefined {
  const body = withFileId(text, name);
  try {
    const value = typeof body === 'string' ? (JSON.parse(body) as { id?: unknown }) : body;
    return isValidJobId(value?.id) ? (value.id as string) : undefined;
  } catch {
    return undefined;
  }
}
