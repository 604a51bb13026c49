import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Same host and pid namespace as this process: only then does a pid mean anything. */
const HOST_TAG = createHash('sha256')
  .update(`${os.hostname()}\0${readNamespace()}`)
  .digest('hex')
  .slice(0, 8);

function readNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    // Without /proc, fall back to the boot id, else the hostname alone.
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return '';
    }
  }
}

/** `.jw-<host>-<pid>-<random>.tmp`: fixed length, and tells who wrote it. */
const TEMP_NAME = /^\.jw-([0-9a-f]{8})-(\d+)-[0-9a-f]+\.tmp$/;
/** A temp file of another host (whose pid we cannot judge) is litter after this long. */
const FOREIGN_TEMP_MS = 60 * 60_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The name of a temp file written by process `pid` of this host. */
export function tempFileName(pid = process.pid): string {
  return `.jw-${HOST_TAG}-${pid}-${randomBytes(4).toString('hex')}.tmp`;
}

/** Writes `file` through a temp file in the same folder and a rename: a reader never sees half. */
export async function writeQueueFile(file: string, data: string): Promise<void> {
  const tmp = path.join(path.dirname(file), tempFileName());
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => {});
    throw error;
  }
}

/**
 * Removes temp files that a killed worker left in `dir`: ours whose process is gone
 * on this host, and any older than an hour (another host's, or an older release's).
 */
export async function removeDeadTempFiles(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('.') || !name.endsWith('.tmp')) continue;
    const file = path.join(dir, name);
    const match = TEMP_NAME.exec(name);
    let dead = match?.[1] === HOST_TAG && !pidAlive(Number(match[2]));
    if (!dead) {
      const info = await stat(file).catch(() => undefined);
      dead = !!info && Date.now() - info.mtimeMs > FOREIGN_TEMP_MS;
    }
    if (
      dead &&
      (await unlink(file).then(
        () => true,
        () => false,
      ))
    )
      removed++;
  }
  return removed;
}
