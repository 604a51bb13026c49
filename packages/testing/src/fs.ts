import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  waitFor as conformanceWaitFor,
  createSandbox,
  type Sandbox,
} from '../../conformance/src/sandbox.js';

// One copy, on the public side: @jw/conformance ships the sandbox to other transports'
// authors. Imported by path, since a package dependency would close a cycle
// (core's tests use this kit, and conformance depends on core).
export { createSandbox, type Sandbox };

/** Polls `check` until it returns a truthy value; a minute by default, for busy machines. */
export function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 60_000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  return conformanceWaitFor(check, timeoutMs, everyMs);
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
