import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from './fs.js';

/** Where file systems of `type` (`cgroup2`, `cgroup`) are mounted, from /proc/mounts. */
export async function mountsOf(type: string): Promise<string[]> {
  const mounts = await readFile('/proc/mounts', 'utf8').catch(() => '');
  return mounts
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2] === type && f[1])
    .map((f) => f[1]!);
}

/**
 * The cgroup2 mount where this user may make cgroups, or why there is none: tests of
 * cgroup containment skip with that reason.
 */
export async function writableCgroup2(): Promise<{ mount: string } | { skip: string }> {
  const [mount] = await mountsOf('cgroup2');
  if (!mount) return { skip: 'no cgroup2 mount in /proc/mounts' };
  const probe = path.join(mount, `jwtest-probe-${process.pid}`);
  try {
    await mkdir(probe);
    await rmdir(probe);
    return { mount };
  } catch (error) {
    return {
      skip: `cannot make a cgroup under ${mount} (${(error as NodeJS.ErrnoException).code})`,
    };
  }
}

/** Kills every process of a cgroup subtree a test made, then removes its dirs, deepest first. */
export async function removeCgroup(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'cgroup.kill'), '1').catch(() => {});
  await waitFor(async () => {
    const events = await readFile(path.join(dir, 'cgroup.events'), 'utf8').catch(() => '');
    return !events.includes('populated 1');
  }, 10_000);
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory()) await removeCgroup(path.join(dir, e.name));
  await rmdir(dir).catch(() => {});
}
