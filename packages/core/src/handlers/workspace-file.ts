import { type FileHandle, lstat, mkdir, open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { NO_FOLLOW } from '../results-dir.js';

/** A relative path without `..`: where a handler may write inside the workspace. */
export function isInsidePath(p: string): boolean {
  return !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..');
}

function within(root: string, p: string): boolean {
  return p === root || p.startsWith(root + path.sep);
}

async function deepestExisting(dir: string): Promise<string> {
  let current = dir;
  for (;;) {
    try {
      await lstat(current);
      return current;
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}

/**
 * Opens `rel` (relative to `base`, itself in `workspace`) for writing, creating its
 * folders. A link on the way that leads out of the workspace is refused, and the file
 * itself is never written through a link: a handler cannot write outside the workspace.
 */
export async function openWorkspaceFile(
  workspace: string,
  base: string,
  rel: string,
): Promise<FileHandle> {
  if (!isInsidePath(rel)) throw new Error(`${rel} is not a relative path inside the workspace`);
  const root = await realpath(workspace);
  const target = path.resolve(base, rel);
  const dir = path.dirname(target);
  const outside = () => new Error(`${rel} leads out of the workspace`);
  // Checked before mkdir too, so that no folder is created through a link that leads out.
  if (!within(root, await realpath(await deepestExisting(dir)))) throw outside();
  await mkdir(dir, { recursive: true });
  const realDir = await realpath(dir);
  if (!within(root, realDir)) throw outside();
  return open(path.join(realDir, path.basename(target)), NO_FOLLOW.write, 0o666);
}
