import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sandbox } from '@jw/testing/fs';
import { type Spawned, spawnProcess } from '@jw/testing/process';

export const BIN = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));

export function queue(box: Sandbox) {
  const root = path.join(box.root, 'queue');
  return {
    root,
    dir: (name: string) => path.join(root, name),
    async drop(name: string, body: unknown) {
      await mkdir(path.join(root, 'pending'), { recursive: true });
      const tmp = path.join(root, `.${name}.tmp`);
      await writeFile(tmp, typeof body === 'string' ? body : JSON.stringify(body));
      await rename(tmp, path.join(root, 'pending', name));
    },
    async result(id: string) {
      return JSON.parse(await readFile(path.join(root, 'results', `${id}.json`), 'utf8'));
    },
  };
}

const started = new Set<Spawned>();

/** Kills the workers a test started and left running (a failed test must not leave one hanging). */
export async function killWorkers(): Promise<void> {
  for (const w of started) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.kill('SIGKILL');
    await w.exited;
  }
  started.clear();
}

/** Starts the built file-worker on the sandbox's folders. */
export function startWorker(box: Sandbox, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const w = spawnProcess(
    process.execPath,
    [
      BIN,
      '--jobs-dir',
      box.jobsDir,
      '--workspaces-dir',
      box.workspacesDir,
      '--queue-dir',
      path.join(box.root, 'queue'),
      '--poll-interval',
      '100',
      ...args,
    ],
    { cwd: box.root, env: { ...process.env, LOG_FORMAT: 'json', ...env } },
  );
  started.add(w);
  return w;
}
