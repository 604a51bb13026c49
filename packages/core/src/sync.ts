import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import picomatch from 'picomatch';
import { ErrorCode, toJwError } from './errors.js';
import { MANIFEST_FILE } from './manifest.js';
import { forEachLimit } from './pool.js';
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

/** Names the worker itself writes at the top of `results/`: a step cannot overwrite them. */
function isReserved(rel: string): boolean {
  return (
    rel === MANIFEST_FILE ||
    /^step_\d+\.log$/.test(rel) ||
    rel.startsWith('.claim') ||
    /^\..*\.tmp$/.test(rel)
  );
}

export function artifactMatcher(filter: ArtifactFilter = {}): (rel: string) => boolean {
  const options = { dot: true };
  const include = picomatch(filter.include?.length ? filter.include : ['**'], options);
  const exclude = filter.exclude?.length ? picomatch(filter.exclude, options) : () => false;
  return (rel) => include(rel) && !exclude(rel) && !isReserved(rel);
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
  const tmp = `${to}.${randomBytes(4).toString('hex')}.jw-tmp`;
  try {
    await pipeline(createReadStream(from), tap, createWriteStream(tmp, { mode }));
    await chmod(tmp, mode);
    await replace(tmp, to);
  } catch (error) {
    await unlink(tmp).catch(() => {});
    throw error;
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
 * stale copies, filtered by the job's artifact globs. Links are copied as links.
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
  try {
    await forEachLimit(
      changes.filter((c) => wanted(c.path)),
      concurrency,
      async (c) => {
        const from = path.join(workspace, c.path);
        const to = path.join(resultsDir, c.path);
        await mkdir(path.dirname(to), { recursive: true });
        if (c.kind === 'symlink') {
          const target = await readlink(from);
          // A link out of the workspace would hand the controller a path into the worker's host.
          const resolved = path.resolve(path.dirname(from), target);
          if (!resolved.startsWith(workspace + path.sep)) return;
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
      },
    );
  } catch (error) {
    throw toJwError(error, ErrorCode.SYNC_FAILED, 'artifact sync failed');
  }
  return synced.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
