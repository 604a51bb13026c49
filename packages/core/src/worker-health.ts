import { mkdir, mkdtemp, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, JwError } from './errors.js';
import type { Logger } from './logger.js';
import { removeDeadWorkspaces } from './workspaces.js';

const WORKSPACE_SWEEP_MS = 60_000;

/** Checks that a dir exists, is a directory and takes new entries (a probe dir made and removed). */
export async function probeWritable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await rmdir(await mkdtemp(path.join(dir, '.jw-probe-')));
}

/** SPEC 10: a jobs dir that is not there, or a workspaces dir that cannot be written, is a bad setting. */
export async function checkDirs(jobsDir: string, workspacesDir: string): Promise<void> {
  const jobs = await stat(jobsDir).catch((error: NodeJS.ErrnoException) => {
    throw new JwError(
      ErrorCode.BAD_CONFIG,
      `jobs dir ${jobsDir} is not there (${error.code ?? error.message})`,
    );
  });
  if (!jobs.isDirectory())
    throw new JwError(ErrorCode.BAD_CONFIG, `jobs dir ${jobsDir} is not a directory`);
  await probeWritable(workspacesDir).catch((error: NodeJS.ErrnoException) => {
    throw new JwError(
      ErrorCode.BAD_CONFIG,
      `workspaces dir ${workspacesDir} cannot be written (${error.code ?? error.message})`,
    );
  });
}

export interface HealOptions {
  workspacesDir: string;
  recheckMs: number;
  idleTimeoutMs: number;
  logger: Logger;
  /** The worker's stop: ends the wait. */
  stopSignal: AbortSignal;
  isStopping: () => boolean;
  /** Jobs still running; while there are some the worker is not idle. */
  activeCount: () => number;
}

/**
 * Waits while the workspaces dir is unusable, checking it every `recheckMs`: `healed` once
 * it works again, `stopped` when the worker stops, `idle` after its idle time-out.
 */
export async function waitUntilHealed(o: HealOptions): Promise<'healed' | 'stopped' | 'idle'> {
  let idleSince = Date.now();
  while (!o.isStopping()) {
    await sleep(o.recheckMs, undefined, { signal: o.stopSignal }).catch(() => {});
    if (o.isStopping()) return 'stopped';
    const healed = await probeWritable(o.workspacesDir).then(
      () => true,
      () => false,
    );
    if (healed) {
      o.logger.info({ workspacesDir: o.workspacesDir }, 'workspaces dir usable again');
      return 'healed';
    }
    if (o.activeCount() > 0) idleSince = Date.now();
    else if (o.idleTimeoutMs && Date.now() - idleSince >= o.idleTimeoutMs) return 'idle';
  }
  return 'stopped';
}

/**
 * Removes workspaces left by dead workers of this host, at once and then every minute,
 * until the returned stop (which waits for a sweep under way) is called.
 */
export function sweepWorkspacesEvery(workspacesDir: string, logger: Logger): () => Promise<void> {
  let sweeping: Promise<void> | undefined;
  const sweep = () => {
    if (sweeping) return;
    sweeping = removeDeadWorkspaces(workspacesDir)
      .then((removed) => {
        if (removed.length > 0)
          logger.info({ count: removed.length }, 'removed workspaces left by dead workers');
      })
      .catch((error) => logger.warn({ err: error }, 'workspace sweep failed'))
      .finally(() => {
        sweeping = undefined;
      });
  };
  sweep();
  const timer = setInterval(sweep, WORKSPACE_SWEEP_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await sweeping;
  };
}
