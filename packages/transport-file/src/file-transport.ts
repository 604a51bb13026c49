import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Transport, TransportContext } from '@jw/core';
import { type FSWatcher, watch } from 'chokidar';
import { scanCancels } from './cancels.js';
import { WorkerFile } from './heartbeat.js';
import { Intake } from './intake.js';
import { recoverOrphans, removeDeliveredClaims } from './orphans.js';
import { Postponed } from './postponed.js';
import { ensureQueueDirs, isRequestFile, type QueueDirs, queueDirs } from './queue-dirs.js';
import { removeDeadTempFiles } from './queue-files.js';
import type { QueueState } from './queue-state.js';
import { Every, list, once } from './scans.js';

export interface FileTransportOptions {
  /** Root of the queue folders. Default `./queue`. */
  queueDir?: string;
  /** A file whose mtime is younger than this is re-checked until its size and mtime stop moving. Default 200 ms. */
  stableMs?: number;
  /** Poll the folders instead of inotify (needed on NFS, where other hosts' writes raise no events). */
  usePolling?: boolean;
  /** Polling interval, and the interval of the safety-net rescan. Default 1000 ms. */
  intervalMs?: number;
  /**
   * A file in `processing/` whose job has no claim made after it was taken (its worker
   * died before claiming) is given back after this long. One whose claim's worker is
   * gone is given back at once. Default 30 s.
   */
  orphanAfterMs?: number;
  /** How often `workers/{workerId}.json` is rewritten; 0 writes none. Default 30 s. */
  heartbeatIntervalMs?: number;
}

/** How often temp files of killed workers are looked for (besides at start). */
const LITTER_SCAN_MS = 60_000;
/** How often the jobs dir is read for claims left beside sent results (besides at start). */
const CLAIM_SWEEP_MS = 10 * 60_000;

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
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 30_000;
  const candidates = new Set<string>();
  let q: QueueState | undefined;
  let intake: Intake | undefined;
  let watcher: FSWatcher | undefined;
  let timers: Every | undefined;
  let heartbeat: WorkerFile | undefined;
  let wake: (() => void) | undefined;

  const addCandidate = (name: string) => {
    if (!isRequestFile(name)) return;
    candidates.add(name);
    wake?.();
    wake = undefined;
  };

  const scanPending = async () => {
    for (const name of await list(dirs.pending)) addCandidate(name);
  };

  const cancels = () => (q ? scanCancels(dirs, q.context) : Promise.resolve());

  const removeLitter = once(async () => {
    for (const dir of [
      dirs.results,
      dirs.failed,
      dirs.processing,
      dirs.done,
      dirs.workers,
      dirs.progress,
    ])
      await removeDeadTempFiles(dir);
  });
  const sweepClaims = once(() =>
    removeDeliveredClaims({ dirs, context: q!.context, orphanAfterMs }),
  );
  const recover = once(() =>
    recoverOrphans({
      dirs,
      context: q!.context,
      orphanAfterMs,
      ours: (taken) => q!.inFlight.has(taken) || q!.postponed.has(taken),
    }),
  );

  const watchQueue = async (ctx: TransportContext) => {
    watcher = watch([dirs.pending, dirs.cancel], {
      ignoreInitial: true,
      depth: 0,
      usePolling: options.usePolling ?? false,
      interval: intervalMs,
    });
    const onEntry = (file: string) => {
      if (path.dirname(file) === dirs.cancel) void cancels().catch(() => {});
      else addCandidate(path.basename(file));
    };
    watcher.on('add', onEntry);
    watcher.on('addDir', onEntry);
    watcher.on('change', onEntry);
    watcher.on('error', (error) => ctx.logger.warn({ err: error }, 'queue watcher error'));
    await new Promise<void>((resolve) => watcher!.once('ready', () => resolve()));
  };

  return {
    name: 'file',
    async start(ctx) {
      await ensureQueueDirs(dirs);
      const postponed = new Postponed(() => ctx);
      q = {
        dirs,
        root: await realpath(dirs.root),
        context: ctx,
        inFlight: new Set(),
        postponed,
        stuck: new Map(),
        addCandidate,
        beat: () => heartbeat?.beat(),
      };
      intake = new Intake(q, stableMs);
      await watchQueue(ctx);
      await removeLitter();
      await recover();
      await scanPending();
      timers = new Every((error) => ctx.logger.warn({ err: error }, 'queue scan failed'));
      // Safety net for missed events (NFS, overflowing inotify queues).
      timers.add(intervalMs, scanPending, cancels, recover, async () => {
        if (postponed.size > 0) await postponed.releaseAllFreed();
      });
      timers.add(LITTER_SCAN_MS, removeLitter);
      // Reads every job dir's claim: not awaited, so it never delays the first job.
      void sweepClaims().catch((error) => ctx.logger.warn({ err: error }, 'queue scan failed'));
      timers.add(CLAIM_SWEEP_MS, sweepClaims);
      heartbeat = new WorkerFile(dirs.workers, ctx, heartbeatIntervalMs);
      await heartbeat.start();
      ctx.logger.info({ queueDir: dirs.root }, `taking requests from ${dirs.pending}`);
    },
    async next(signal) {
      while (!signal.aborted) {
        for (const name of [...candidates].sort()) {
          candidates.delete(name);
          if (signal.aborted) return null;
          const delivery = await intake!.take(name, signal);
          if (delivery) return delivery;
        }
        if (candidates.size > 0) continue;
        // Aborted while a look was under way: the listener below would never fire.
        if (signal.aborted) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      return null;
    },
    async stop() {
      timers?.clear();
      await Promise.all([sweepClaims.idle(), recover.idle(), removeLitter.idle()]);
      intake?.stop();
      await q?.postponed.releaseAll();
      await watcher?.close();
      await heartbeat?.stop();
    },
  };
}
