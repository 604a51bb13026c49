import {
  chmod,
  copyFile,
  lstat,
  lutimes,
  mkdir,
  readlink,
  realpath,
  symlink,
  utimes,
} from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, toJwError } from './errors.js';
import { RESULTS_DIR } from './manifest.js';
import { forEachLimit } from './pool.js';
import { walk } from './walk.js';

export interface StageOptions {
  /** Copies in flight at once. */
  concurrency?: number;
}

export interface StageSummary {
  files: number;
  links: number;
  dirs: number;
  bytes: number;
}

/**
 * Copies the job dir minus `results/` into `workspace`, keeping modes and mtimes,
 * copying links as links, wherever they point (SPEC 4): none is followed, so nothing
 * outside the job dir is read.
 */
export async function stageJob(
  jobDir: string,
  workspace: string,
  options: StageOptions = {},
): Promise<StageSummary> {
  const root = await realpath(jobDir);
  const summary: StageSummary = { files: 0, links: 0, dirs: 0, bytes: 0 };
  try {
    const entries = await walk(root, (rel) => rel === RESULTS_DIR);
    const dirs = entries.filter((e) => e.dirent.isDirectory());
    // Parents come before children in walk order, so plain mkdir suffices.
    for (const dir of dirs) await mkdir(path.join(workspace, dir.rel));
    summary.dirs = dirs.length;
    const leaves = entries.filter((e) => !e.dirent.isDirectory());
    await forEachLimit(leaves, options.concurrency ?? 32, async (entry) => {
      const dest = path.join(workspace, entry.rel);
      if (entry.dirent.isSymbolicLink()) {
        await symlink(await readlink(entry.abs), dest);
        const info = await lstat(entry.abs);
        await lutimes(dest, info.atime, info.mtime).catch(() => {});
        summary.links++;
      } else if (entry.dirent.isFile()) {
        // copyFile keeps the mode; mtimes are restored so the snapshot sees staged files as unchanged.
        await copyFile(entry.abs, dest);
        const info = await lstat(entry.abs);
        await utimes(dest, info.atime, info.mtime);
        summary.files++;
        summary.bytes += info.size;
      }
      // Sockets, fifos and devices are not job content: left out.
    });
    // Directory mtimes last: creating their contents changed them.
    await forEachLimit(dirs, options.concurrency ?? 32, async (dir) => {
      const info = await lstat(dir.abs);
      const dest = path.join(workspace, dir.rel);
      await chmod(dest, info.mode & 0o7777);
      await utimes(dest, info.atime, info.mtime);
    });
    return summary;
  } catch (error) {
    throw toJwError(error, ErrorCode.STAGING_FAILED, 'staging failed');
  }
}
