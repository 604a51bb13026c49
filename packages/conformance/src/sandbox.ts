import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A temp folder holding a jobs dir and a workspaces dir, for one test. */
export interface Sandbox {
  root: string;
  jobsDir: string;
  workspacesDir: string;
  /** Creates `jobs/{id}` with a job.json (when `job` is given) and extra files. */
  makeJob(id: string, job?: unknown, files?: Record<string, string>): Promise<string>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read manifests field by field
  readResult(id: string): Promise<Record<string, any>>;
  readLog(id: string, step: number): Promise<string>;
  cleanup(): Promise<void>;
}

/** A temp folder with `jobs/` and `workspaces/`, removed by `cleanup`. */
export async function createSandbox(prefix = 'jw-test-'): Promise<Sandbox> {
  const root = await mkdtemp(path.join(os.tmpdir(), prefix));
  const jobsDir = path.join(root, 'jobs');
  const workspacesDir = path.join(root, 'workspaces');
  await mkdir(jobsDir);
  await mkdir(workspacesDir);
  return {
    root,
    jobsDir,
    workspacesDir,
    async makeJob(id, job, files = {}) {
      const dir = path.join(jobsDir, id);
      await mkdir(dir, { recursive: true });
      if (job !== undefined)
        await writeFile(
          path.join(dir, 'job.json'),
          typeof job === 'string' ? job : JSON.stringify(job),
        );
      for (const [name, content] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
        await writeFile(path.join(dir, name), content);
      }
      return dir;
    },
    async readResult(id) {
      return JSON.parse(await readFile(path.join(jobsDir, id, 'results', 'result.json'), 'utf8'));
    },
    async readLog(id, step) {
      return readFile(path.join(jobsDir, id, 'results', `step_${step}.log`), 'utf8');
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value (for state on disk or in another process). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 15_000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
