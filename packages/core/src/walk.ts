import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

export interface WalkEntry {
  /** Relative path with `/` separators. */
  rel: string;
  abs: string;
  dirent: Dirent;
}

/**
 * Lists a tree depth-first, directories before their contents, without following
 * links. `skip` gets each relative path and can prune it (and everything below).
 */
export async function walk(
  root: string,
  skip: (rel: string, dirent: Dirent) => boolean = () => false,
): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    const subdirs: Promise<void>[] = [];
    for (const dirent of entries) {
      const rel = prefix ? `${prefix}/${dirent.name}` : dirent.name;
      if (skip(rel, dirent)) continue;
      const abs = path.join(dir, dirent.name);
      out.push({ rel, abs, dirent });
      if (dirent.isDirectory()) subdirs.push(visit(abs, rel));
    }
    await Promise.all(subdirs);
  };
  await visit(root, '');
  return out;
}
