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
import { fileStateOf, Snapshot } from './snapshot.js';
import { forEachAsync, walkTree } from './walk.js';

export interface StageOptions {
  /** Copies in flight at once. */
  concurrency?: number;
  /** `jobDir` is already a real path (the worker resolved it): not resolved again. */
  realJobDir?: boolean;
}

export interface StageSummary {
  files: number;
  links: number;
  dirs: number;
  bytes: number;
  /**
   * The staged workspace as the steps will find it: the `before` snapshot, taken while
   * copying (one walk of the tree, not two).
   */
  snapshot: Snapshot;
}

/** What staging a job dir that holds nothing but `results/` gives: an empty workspace. */
export function emptyStage(): StageSummary {
  return { files: 0, links: 0, dirs: 0, bytes: 0, snapshot: new Snapshot() };
}

/**
 * Copies the job dir minus `results/` into `workspace`, keeping modes and mtimes,
 * copying links as links, wherever they point (SPEC 4): none is followed, so nothing
 * outside the job dir is read. The tree is streamed: what is held per file is its
 * snapshot record.
 */
export async function stageJob(
  jobDir: string,
  workspace: string,
  options: StageOptions = {},
): Promise<StageSummary> {
  const root = options.realJobDir ? jobDir : await realpath(jobDir);
  const snapshot = new Snapshot();
  const summary: StageSummary = { files: 0, links: 0, dirs: 0, bytes: 0, snapshot };
  const dirs: string[] = [];
  const limit = options.concurrency ?? 32;
  try {
    const entries = walkTree(root, {
      skip: (rel) => rel === RESULTS_DIR,
      // A directory is made before anything inside it is listed, so its contents can go in.
      enter: async (dir) => {
        await mkdir(path.join(workspace, dir.rel));
        dirs.push(dir.rel);
      },
    });
    await forEachAsync(entries, limit, async (entry) => {
      const dest = path.join(workspace, entry.rel);
      if (entry.dirent.isSymbolicLink()) {
        const target = await readlink(entry.abs);
        await symlink(target, dest);
        const info = await lstat(entry.abs);
        await lutimes(dest, info.atime, info.mtime).catch(() => {});
        snapshot.setIn(entry.parent, entry.dirent.name, {
          ...fileStateOf(await lstat(dest)),
          target,
        });
        summary.links++;
      } else if (entry.dirent.isFile()) {
        // copyFile keeps the mode; mtimes are restored so the steps see the job's own.
        await copyFile(entry.abs, dest);
        const info = await lstat(entry.abs);
        await utimes(dest, info.atime, info.mtime);
        // What the copy has now (mtimes lose precision on the way): the before snapshot.
        snapshot.setIn(entry.parent, entry.dirent.name, fileStateOf(await lstat(dest)));
        summary.files++;
        summary.bytes += info.size;
      }
      // Directories were made on entry; sockets, fifos and devices are not job content: left out.
    });
    summary.dirs = dirs.length;
    // Directory modes and mtimes last: creating their contents changed them.
    await forEachLimit(dirs, limit, async (rel) => {
      const info = await lstat(path.join(root, rel));
      const dest = path.join(workspace, rel);
      await chmod(dest, info.mode & 0o7777);
      await utimes(dest, info.atime, info.mtime);
    });
    return summary;
  } catch (error) {
    throw toJwError(error, ErrorCode.STAGING_FAILED, 'staging failed');
  }
}
