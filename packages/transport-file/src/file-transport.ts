import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  type Delivery,
  isFinalStatus,
  isValidJobId,
  leaseRemaining,
  readClaim,
  readManifest,
  resultMessageOf,
  type Transport,
  type TransportContext,
  writeFileAtomic,
} from '@jw/core';
import { type FSWatcher, watch } from 'chokidar';
import { ensureQueueDirs, isRequestFile, type QueueDirs, queueDirs } from './queue-dirs.js';

export interface FileTransportOptions {
  /** Root of the queue folders. Default `./queue`. */
  queueDir?: string;
  /** A file whose mtime is younger than this is re-checked until its size and mtime stop moving. Default 200 ms. */
  stableMs?: number;
  /** Poll the folders instead of inotify (needed on NFS, where other hosts' writes raise no events). */
  usePolling?: boolean;
  /** Polling interval, and the interval of the safety-net rescan. Default 1000 ms. */
  intervalMs?: number;
  /** Files left in `processing/` by a dead worker are given back after this long without a live claim. Default 30 s. */
  orphanAfterMs?: number;
}

/** `hello~1a2b3c4d.json` in processing/ was `hello.json` in pending/. */
function originalName(taken: string): string {
  return taken.replace(/~[0-9a-f]+\.json$/, '.json');
}

/** The request body: a file without an `id` takes its name (`hello.json` → `hello`). */
function withFileId(text: string, name: string): string | Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value) && !('id' in value)) {
      return { ...(value as Record<string, unknown>), id: name.replace(/\.json$/, '') };
    }
  } catch {
    // Not JSON: core rejects it with the parse error.
  }
  return text;
}

/**
 * Watched-folder transport (SPEC 9): requests dropped into `pending/` are claimed by
 * an atomic rename into `processing/`, so several workers on one folder never take
 * the same file; results go to `results/{id}.json`, requests to `done/` or `failed/`.
 */
export function createFileTransport(options: FileTransportOptions = {}): Transport {
  const dirs: QueueDirs = queueDirs(options.queueDir ?? './queue');
  const stableMs = options.stableMs ?? 200;
  const intervalMs = options.intervalMs ?? 1000;
  const orphanAfterMs = options.orphanAfterMs ?? 30_000;
  const candidates = new Set<string>();
  const pendingReleases = new Map<string, { timer: NodeJS.Timeout; run: () => Promise<void> }>();
  let context: TransportContext | undefined;
  let watcher: FSWatcher | undefined;
  let rescanTimer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const addCandidate = (name: string) => {
    if (!isRequestFile(name)) return;
    candidates.add(name);
    notify();
  };

  const scanPending = async () => {
    for (const name of await readdir(dirs.pending).catch(() => [] as string[])) addCandidate(name);
  };

  /** Gives back files in `processing/` whose job no live worker holds (a worker was killed). */
  const recoverOrphans = async () => {
    for (const taken of await readdir(dirs.processing).catch(() => [] as string[])) {
      if (!isRequestFile(taken) || pendingReleases.has(taken)) continue;
      const name = originalName(taken);
      const file = path.join(dirs.processing, taken);
      const info = await stat(file).catch(() => undefined);
      // rename sets ctime: a file freshly taken by a live worker is left alone.
      if (!info || Date.now() - info.ctimeMs < orphanAfterMs) continue;
      const id = await readFile(file, 'utf8').then(
        (text) => {
          const body = withFileId(text, name);
          const value = typeof body === 'string' ? (JSON.parse(body) as { id?: unknown }) : body;
          return isValidJobId(value.id) ? value.id : undefined;
        },
        () => undefined,
      );
      if (id === undefined) continue;
      if (context?.activeJobs().includes(id)) continue;
      const jobDir = path.join(context!.jobsDir, id);
      const claim = await readClaim(path.join(jobDir, 'results'));
      if (claim && (await leaseRemaining(claim)) > 0) continue;
      const manifest = await readManifest(jobDir);
      if (manifest && isFinalStatus(manifest.status)) {
        await writeFileAtomic(
          path.join(dirs.results, `${id}.json`),
          JSON.stringify(resultMessageOf(manifest, context!.workerId, true)),
        );
        await rename(file, path.join(dirs.done, name)).catch(() => {});
      } else {
        context?.logger.warn(
          { file: name, jobId: id },
          'giving back a request left in processing/ by a dead worker',
        );
        await rename(file, path.join(dirs.pending, name)).catch(() => {});
      }
    }
  };

  const scanCancels = async () => {
    for (const name of await readdir(dirs.cancel).catch(() => [] as string[])) {
      const id = name.replace(/\.json$/, '');
      if (context?.cancelJob(id, 'cancel file'))
        await unlink(path.join(dirs.cancel, name)).catch(() => {});
    }
  };

  /** Young files are checked again until their size and mtime stop moving. */
  const isStable = async (file: string): Promise<boolean> => {
    const first = await stat(file).catch(() => undefined);
    if (!first) return false;
    if (Date.now() - first.mtimeMs >= stableMs) return true;
    await new Promise((r) => setTimeout(r, stableMs));
    const second = await stat(file).catch(() => undefined);
    return (
      !!second &&
      second.size === first.size &&
      second.mtimeMs === first.mtimeMs &&
      Date.now() - second.mtimeMs >= stableMs
    );
  };

  const deliveryOf = (name: string, taken: string, text: string): Delivery => {
    const processing = path.join(dirs.processing, taken);
    // Another worker's orphan scan may already have moved a finished request on.
    const moveTo = (dir: string) =>
      rename(processing, path.join(dir, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    const writeResult = async (result: { id: string }) => {
      await writeFileAtomic(
        path.join(dirs.results, `${result.id}.json`),
        `${JSON.stringify(result, null, 2)}\n`,
      );
    };
    return {
      body: withFileId(text, name),
      label: name,
      async complete(result) {
        await writeResult(result);
        await moveTo(dirs.done);
      },
      async reject(error, result) {
        if (result) await writeResult(result);
        const reason = {
          error: error.message,
          errorCode: error.code,
          worker: context?.workerId,
          at: new Date().toISOString(),
        };
        await writeFile(
          path.join(dirs.failed, `${name}.reason`),
          `${JSON.stringify(reason, null, 2)}\n`,
        );
        await moveTo(dirs.failed);
      },
      async release(_reason, delayMs) {
        const run = async () => {
          pendingReleases.delete(taken);
          await moveTo(dirs.pending);
        };
        if (delayMs <= 0) return run();
        // Kept in processing/ until then, so no worker spins on a job another one holds.
        pendingReleases.set(taken, { timer: setTimeout(() => void run(), delayMs), run });
      },
    };
  };

  return {
    name: 'file',
    async start(ctx) {
      context = ctx;
      await ensureQueueDirs(dirs);
      watcher = watch([dirs.pending, dirs.cancel], {
        ignoreInitial: true,
        depth: 0,
        usePolling: options.usePolling ?? false,
        interval: intervalMs,
      });
      watcher.on('add', (file) => {
        if (path.dirname(file) === dirs.cancel) void scanCancels();
        else addCandidate(path.basename(file));
      });
      watcher.on('error', (error) => ctx.logger.warn({ err: error }, 'queue watcher error'));
      await new Promise<void>((resolve) => watcher!.once('ready', () => resolve()));
      await recoverOrphans();
      await scanPending();
      // Safety net for missed events (NFS, overflowing inotify queues).
      rescanTimer = setInterval(() => {
        void scanPending();
        void scanCancels();
        void recoverOrphans().catch((error) =>
          ctx.logger.warn({ err: error }, 'orphan scan failed'),
        );
      }, intervalMs);
      rescanTimer.unref();
    },
    async next(signal) {
      while (!signal.aborted) {
        for (const name of [...candidates].sort()) {
          candidates.delete(name);
          const source = path.join(dirs.pending, name);
          if (!(await isStable(source))) {
            if (await stat(source).catch(() => undefined)) addCandidate(name);
            continue;
          }
          if (signal.aborted) return null;
          // A unique name in processing/: a new request of the same name cannot overwrite this one.
          const taken = `${name.slice(0, -'.json'.length)}~${randomBytes(4).toString('hex')}.json`;
          const target = path.join(dirs.processing, taken);
          try {
            await rename(source, target);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // another worker took it
            throw error;
          }
          return deliveryOf(name, taken, await readFile(target, 'utf8'));
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      return null;
    },
    async stop() {
      if (rescanTimer) clearInterval(rescanTimer);
      for (const { timer, run } of pendingReleases.values()) {
        clearTimeout(timer);
        await run();
      }
      await watcher?.close();
    },
  };
}
