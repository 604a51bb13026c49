import { createHash } from 'node:crypto';
import { lstat, open, readlink, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import picomatch from 'picomatch';
import { ErrorCode, toJwError } from './errors.js';
import { MANIFEST_FILE } from './manifest.js';
import { forEachLimit } from './pool.js';
import { linkRefused, NO_FOLLOW, ResultsDirs, tempName } from './results-dir.js';
import type { Change } from './snapshot.js';

export interface ArtifactFilter {
  include?: string[];
  exclude?: string[];
}

export interface SyncedArtifact {
  path: string;
  size: number;
  sha256: string;
  change: 'added' | 'modified';
}

/**
 * Names the worker itself writes at the top of `results/`: a step cannot overwrite
 * them, nor put a directory in their place.
 */
function isReserved(rel: string): boolean {
  const top = rel.split('/')[0]!;
  return (
    top === MANIFEST_FILE ||
    /^step_\d+\.log$/.test(top) ||
    top.startsWith('.claim') ||
    /^\..*\.tmp$/.test(top)
  );
}

/** picomatch's wildcards never match a line break; one in a name stands for any other character. */
const LINE_BREAKS = /[\n\r\u2028\u2029]/g;

export function artifactMatcher(filter: ArtifactFilter = {}): (rel: string) => boolean {
  const options = { dot: true };
  const include = picomatch(filter.include?.length ? filter.include : ['**'], options);
  const exclude = filter.exclude?.length ? picomatch(filter.exclude, options) : () => false;
  return (rel) => {
    const name = rel.replace(LINE_BREAKS, '\u0001');
    return include(name) && !exclude(name) && !isReserved(rel);
  };
}

/** Copies `from` to `to` through a temp file, hashing on the way; a reader never sees half a file. */
async function copyHashed(
  from: string,
  to: string,
  mode: number,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  // Opened without following links: a link put in the way is never written through.
  const source = await open(from, NO_FOLLOW.read);
  const tmp = tempName(path.dirname(to));
  let created = false;
  try {
    const target = await open(tmp, NO_FOLLOW.create, mode);
    created = true;
    await target.chmod(mode).catch(async (error) => {
      await target.close();
      throw error;
    });
    await pipeline(source.createReadStream(), tap, target.createWriteStream());
    await replace(tmp, to);
  } catch (error) {
    if (created) await unlink(tmp).catch(() => {});
    throw error;
  } finally {
    await source.close().catch(() => {});
  }
  return { size, sha256: hash.digest('hex') };
}

/** rename over `to`, clearing a directory that a stale attempt left where a file now goes. */
async function replace(tmp: string, to: string): Promise<void> {
  try {
    await rename(tmp, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    await rm(to, { recursive: true, force: true });
    await rename(tmp, to);
  }
}

/**
 * Copies every changed file of the workspace to `resultsDir/<path>`, overwriting
 * stale copies, filtered by the job's artifact globs. Links are copied as links,
 * wherever they point; none is followed (SPEC 4). A link in `results/` where an
 * artifact's directory goes ends the sync with BAD_JOB: it is never written through.
 */
export async function syncArtifacts(
  workspace: string,
  resultsDir: string,
  changes: Change[],
  filter: ArtifactFilter = {},
  concurrency = 16,
): Promise<SyncedArtifact[]> {
  const wanted = artifactMatcher(filter);
  const synced: SyncedArtifact[] = [];
  const copies = changes.filter((c) => wanted(c.path));
  // Nothing to copy, nothing to look at: no path operations on the shared drive.
  if (copies.length === 0) return synced;
  try {
    if ((await lstat(resultsDir)).isSymbolicLink()) throw linkRefused('');
    const root = await realpath(resultsDir);
    const dirs = new ResultsDirs(root);
    await forEachLimit(copies, concurrency, async (c) => {
      const from = path.join(workspace, c.path);
      const to = path.join(root, c.path);
      await dirs.ensure(path.posix.dirname(c.path));
      if (c.kind === 'symlink') {
        const target = await readlink(from);
        await rm(to, { recursive: true, force: true });
        await symlink(target, to);
        synced.push({
          path: c.path,
          size: 0,
          sha256: createHash('sha256').update(target).digest('hex'),
          change: c.change,
        });
        return;
      }
      const { size, sha256 } = await copyHashed(from, to, c.mode);
      synced.push({ path: c.path, size, sha256, change: c.change });
    });
  } catch (error) {
    throw toJwError(error, ErrorCode.SYNC_FAILED, 'artifact sync failed');
  }
  return synced.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
