import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

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
  timeoutMs = 60_000,
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

export async function exists(file: string): Promise<boolean> {
  return readFile(file).then(
    () => true,
    () => false,
  );
}

/**
 * Writes `results/.claim` as a worker on another host left it when it died: the lease
 * ran out a minute ago, so any worker may take the job over (as attempt 2).
 */
export async function writeExpiredClaim(
  jobDir: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const past = new Date(Date.now() - 60_000).toISOString();
  await mkdir(path.join(jobDir, 'results'), { recursive: true });
  const claim = {
    token: 'dead-worker',
    workerId: 'dead',
    pid: 999_999,
    hostname: 'elsewhere',
    pidNamespace: null,
    attempt: 1,
    claimedAt: past,
    renewedAt: past,
    expiresAt: past,
    leaseMs: 30_000,
    ...extra,
  };
  await writeFile(path.join(jobDir, 'results', '.claim'), JSON.stringify(claim));
}

/**
 * A file that a step waits for, so that the test decides when the step goes on
 * instead of racing a `sleep` against a busy machine.
 */
export interface Gate {
  readonly file: string;
  /** Shell that blocks until the gate is open. */
  readonly wait: string;
  open(): Promise<void>;
}

export function gate(dir: string, name = 'gate'): Gate {
  const file = path.join(dir, `${name}.open`);
  const quoted = `'${file.replaceAll("'", `'\\''`)}'`;
  return {
    file,
    wait: `until [ -e ${quoted} ]; do sleep 0.05; done`,
    open: () => writeFile(file, ''),
  };
}
