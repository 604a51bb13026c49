import { readdir, realpath, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  type Delivery,
  ErrorCode,
  leaseRemaining,
  readClaim,
  type Transport,
  type TransportContext,
} from '@jw/core';
import { type FSWatcher, watch } from 'chokidar';
import { recoverOrphans, removeDeliveredClaims, takenName } from './orphans.js';
import { ensureQueueDirs, isRequestFile, type QueueDirs, queueDirs } from './queue-dirs.js';
import { removeDeadTempFiles, writeQueueFile } from './queue-files.js';
import {
  type Entry,
  inspectEntry,
  jobIdOf,
  looksUnfinished,
  readRegular,
  withFileId,
} from './request-file.js';

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
}

/** A file cut off mid-JSON is dead-lettered only once unchanged for this many stability windows. */
const SETTLE_WINDOWS = 5;
/** How often temp files of killed workers are looked for (besides at start). */
const LITTER_SCAN_MS = 60_000;
/** How often the jobs dir is read for claims left beside sent results (besides at start). */
const CLAIM_SWEEP_MS = 10 * 60_000;

const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

const whenAborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });

/** A scan that is skipped while the previous one still runs (a slow NFS must not pile them up). */
function once(scan: () => Promise<void>): (() => Promise<void>) & { idle(): Promise<void> } {
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= scan().finally(() => {
      running = undefined;
    });
    return running;
  };
  return Object.assign(run, { idle: () => running?.catch(() => {}) ?? Promise.resolve() });
}

interface Postponed {
  id: string | undefined;
  timer: NodeJS.Timeout;
  run: () => Promise<void>;
}

/**
 * Watched-folder transport (SPEC 9): requests dropped into `pending/` are claimed by
 * an atomic rename into `processing/`, so several workers on one folder never take
 * the same file; results go to `results/{id}.json`, requests to `done/` or `failed/`.
 */
export function createFileTransport(options: FileTransportOptions = {}): Transport {
  const dirs: QueueDirs = queueDirs(options.queueDir ?? './queue');
  const stableMs = options.stableMs ?? 200;
  const settleMs = SETTLE_WINDOWS * stableMs;
  const intervalMs = options.intervalMs ?? 1000;
  const orphanAfterMs = options.orphanAfterMs ?? 30_000;
  const candidates = new Set<string>();
  /** Taken by this worker and not settled yet. */
  const inFlight = new Set<string>();
  const postponed = new Map<string, Postponed>();
  /** Files that do not parse yet, looked at again when their settling time is over. */
  const unsettled = new Map<string, NodeJS.Timeout>();
  /** Entries that could not be moved out of pending/ (by inode), so they are not retried. */
  const stuck = new Map<string, number>();
  let root = dirs.root;
  let context: TransportContext | undefined;
  let watcher: FSWatcher | undefined;
  let rescanTimer: NodeJS.Timeout | undefined;
  let litterTimer: NodeJS.Timeout | undefined;
  let claimTimer: NodeJS.Timeout | undefined;
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
  const logger = () => context!.logger;

  const scanPending = async () => {
    for (const name of await list(dirs.pending)) addCandidate(name);
  };

  const scanCancels = async () => {
    for (const name of await list(dirs.cancel)) {
      const id = name.replace(/\.json$/, '');
      if (context?.cancelJob(id, 'cancel file'))
        await unlink(path.join(dirs.cancel, name)).catch(() => {});
    }
  };

  const removeLitter = once(async () => {
    for (const dir of [dirs.results, dirs.failed, dirs.processing, dirs.done])
      await removeDeadTempFiles(dir);
  });

  /** A postponed request whose job is free again (its holder ended or died) is given back now. */
  const releaseFreed = async (onlyId?: string): Promise<void> => {
    for (const [taken, entry] of postponed) {
      if (onlyId !== undefined && entry.id !== onlyId) continue;
      const claim = entry.id
        ? await readClaim(path.join(context!.jobsDir, entry.id, 'results'))
        : undefined;
      if (claim && (await leaseRemaining(claim)) > 0) continue;
      if (postponed.get(taken) !== entry) continue;
      clearTimeout(entry.timer);
      await entry.run();
    }
  };

  const releaseAllFreed = once(() => releaseFreed());
  const sweepClaims = once(() => removeDeliveredClaims({ dirs, context: context!, orphanAfterMs }));

  /**
   * A job of this worker just ended: requests of it postponed here need not wait for the
   * lease, nor for the next rescan. Its claim goes once the result is delivered, a moment
   * after `complete()`, so look a few times.
   */
  const releaseWhenFree = async (id: string) => {
    for (const delayMs of [0, 20, 50, 100, 200, 500]) {
      await new Promise((r) => setTimeout(r, delayMs));
      await releaseFreed(id);
      if (![...postponed.values()].some((entry) => entry.id === id)) return;
    }
  };

  const recover = once(() =>
    recoverOrphans({
      dirs,
      context: context!,
      orphanAfterMs,
      ours: (taken) => inFlight.has(taken) || postponed.has(taken),
    }),
  );

  /** Moves what is not a request file to failed/ with a `.reason`, without reading it. */
  const deadLetterEntry = async (from: string, name: string, reason: string, ino?: number) => {
    let target = name;
    for (;;) {
      try {
        await rename(from, path.join(dirs.failed, target));
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return; // another worker moved it
        if (target === name && ['EEXIST', 'ENOTEMPTY', 'EISDIR', 'ENOTDIR'].includes(code ?? '')) {
          target = takenName(name); // failed/ already holds one of that name, of another type
          continue;
        }
        if (ino !== undefined) stuck.set(name, ino);
        logger().warn({ file: name, reason, err: error }, 'bad request file left in pending/');
        return;
      }
    }
    const error = `not a request file: ${reason}`;
    await writeQueueFile(
      path.join(dirs.failed, `${target}.reason`),
      `${JSON.stringify(
        {
          error,
          errorCode: ErrorCode.BAD_REQUEST,
          worker: context?.workerId,
          at: new Date().toISOString(),
        },
        null,
        2,
      )}\n`,
    );
    logger().warn({ file: name, reason, failed: target }, `bad request file ${name}: ${reason}`);
  };

  /** A young file is looked at again until its size and mtime stop moving. */
  const isStable = async (source: string, first: Entry & { kind: 'file' }): Promise<boolean> => {
    if (Date.now() - first.stats.mtimeMs >= stableMs) return true;
    // No writing can turn whole JSON into other JSON: a request renamed in is taken at once.
    const now = await readRegular(first.file);
    if (now && !('bad' in now) && !looksUnfinished(now.text)) return true;
    await new Promise((r) => setTimeout(r, stableMs));
    const second = await inspectEntry(source, root);
    return (
      second.kind === 'file' &&
      second.stats.ino === first.stats.ino &&
      second.stats.size === first.stats.size &&
      second.stats.mtimeMs === first.stats.mtimeMs &&
      Date.now() - second.stats.mtimeMs >= stableMs
    );
  };

  const retryWhenSettled = (name: string, delayMs: number) => {
    clearTimeout(unsettled.get(name));
    unsettled.set(
      name,
      setTimeout(() => {
        unsettled.delete(name);
        addCandidate(name);
      }, delayMs),
    );
  };

  /** Takes `pending/{name}` if it is a request ready to run; undefined when it is not (yet). */
  const take = async (name: string, signal: AbortSignal): Promise<Delivery | undefined> => {
    const source = path.join(dirs.pending, name);
    const entry = await inspectEntry(source, root);
    if (entry.kind === 'gone') return undefined;
    if (entry.kind === 'bad') {
      if (stuck.get(name) !== entry.ino)
        await deadLetterEntry(source, name, entry.reason, entry.ino);
      return undefined;
    }
    if (!(await isStable(source, entry))) {
      addCandidate(name);
      return undefined;
    }
    // Changed recently (written in place, or just renamed in): a file cut off mid-JSON waits for its writer.
    const age = Date.now() - Math.max(entry.stats.mtimeMs, entry.stats.ctimeMs);
    if (age < settleMs) {
      const early = await readRegular(entry.file);
      if (!early) return undefined;
      if ('bad' in early) {
        await deadLetterEntry(source, name, early.bad);
        return undefined;
      }
      if (looksUnfinished(early.text)) {
        logger().debug(
          { file: name },
          'request file is not complete JSON yet; looking again later',
        );
        retryWhenSettled(name, settleMs - age);
        return undefined;
      }
    }
    if (signal.aborted) return undefined;
    const taken = takenName(name);
    const target = path.join(dirs.processing, taken);
    try {
      await rename(source, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // another worker took it
      throw error;
    }
    inFlight.add(taken);
    try {
      const read = await readRegular(entry.link ? entry.file : target);
      if (!read || 'bad' in read) {
        await deadLetterEntry(target, name, read ? read.bad : 'a link whose file went away');
        inFlight.delete(taken);
        return undefined;
      }
      // What runs is kept in processing/ and done/, not a link to a file that may change.
      if (entry.link) await writeQueueFile(target, read.text);
      return deliveryOf(name, taken, read.text);
    } catch (error) {
      inFlight.delete(taken);
      throw error;
    }
  };

  const deliveryOf = (name: string, taken: string, text: string): Delivery => {
    const processing = path.join(dirs.processing, taken);
    // Another worker's orphan scan may already have moved a finished request on.
    const moveTo = (dir: string) =>
      rename(processing, path.join(dir, name)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    const writeResult = (result: { id: string }) =>
      writeQueueFile(
        path.join(dirs.results, `${result.id}.json`),
        `${JSON.stringify(result, null, 2)}\n`,
      );
    const settled = (id: string | undefined) => {
      inFlight.delete(taken);
      if (id !== undefined && postponed.size > 0)
        void releaseWhenFree(id).catch((error) =>
          logger().warn({ err: error }, 'could not give back a postponed request'),
        );
    };
    return {
      body: withFileId(text, name),
      label: name,
      async complete(result) {
        try {
          await writeResult(result);
          await moveTo(dirs.done);
        } finally {
          settled(result.id);
        }
      },
      async reject(error, result) {
        try {
          if (result) await writeResult(result);
          const reason = {
            error: error.message,
            errorCode: error.code,
            worker: context?.workerId,
            at: new Date().toISOString(),
          };
          await writeQueueFile(
            path.join(dirs.failed, `${name}.reason`),
            `${JSON.stringify(reason, null, 2)}\n`,
          );
          await moveTo(dirs.failed);
        } finally {
          settled(undefined);
        }
      },
      async release(_reason, delayMs) {
        inFlight.delete(taken);
        let givenBack = () => {};
        const back = new Promise<void>((resolve) => {
          givenBack = resolve;
        });
        const run = async () => {
          postponed.delete(taken);
          try {
            await moveTo(dirs.pending);
            addCandidate(name);
          } finally {
            givenBack();
          }
        };
        if (delayMs <= 0) return run();
        // Kept in processing/ until then, so no worker spins on a job another one holds.
        const id = jobIdOf(text, name);
        const timer = setTimeout(
          () =>
            void run().catch((error) =>
              logger().warn({ err: error, file: name }, 'could not give back a postponed request'),
            ),
          delayMs,
        );
        postponed.set(taken, { id, timer, run });
        // Behind a job this worker runs itself, the request keeps its slot until it is given
        // back: the worker counts it as work (no idle exit) and takes it again when the job ends.
        if (id !== undefined && context?.activeJobs().includes(id))
          await Promise.race([back, whenAborted(context.signal)]);
      },
    };
  };

  return {
    name: 'file',
    async start(ctx) {
      context = ctx;
      await ensureQueueDirs(dirs);
      root = await realpath(dirs.root);
      watcher = watch([dirs.pending, dirs.cancel], {
        ignoreInitial: true,
        depth: 0,
        usePolling: options.usePolling ?? false,
        interval: intervalMs,
      });
      const onEntry = (file: string) => {
        if (path.dirname(file) === dirs.cancel) void scanCancels().catch(() => {});
        else addCandidate(path.basename(file));
      };
      watcher.on('add', onEntry);
      watcher.on('addDir', onEntry);
      watcher.on('change', onEntry);
      watcher.on('error', (error) => ctx.logger.warn({ err: error }, 'queue watcher error'));
      await new Promise<void>((resolve) => watcher!.once('ready', () => resolve()));
      await removeLitter();
      await recover();
      await scanPending();
      // Safety net for missed events (NFS, overflowing inotify queues).
      const scanFailed = (error: unknown) => ctx.logger.warn({ err: error }, 'queue scan failed');
      rescanTimer = setInterval(() => {
        void scanPending().catch(scanFailed);
        void scanCancels().catch(scanFailed);
        void recover().catch(scanFailed);
        if (postponed.size > 0) void releaseAllFreed().catch(scanFailed);
      }, intervalMs);
      rescanTimer.unref();
      litterTimer = setInterval(() => void removeLitter().catch(scanFailed), LITTER_SCAN_MS);
      litterTimer.unref();
      // Reads every job dir's claim: not awaited, so it never delays the first job.
      void sweepClaims().catch(scanFailed);
      claimTimer = setInterval(() => void sweepClaims().catch(scanFailed), CLAIM_SWEEP_MS);
      claimTimer.unref();
      ctx.logger.info({ queueDir: dirs.root }, `taking requests from ${dirs.pending}`);
    },
    async next(signal) {
      while (!signal.aborted) {
        for (const name of [...candidates].sort()) {
          candidates.delete(name);
          if (signal.aborted) return null;
          const delivery = await take(name, signal);
          if (delivery) return delivery;
        }
        if (candidates.size > 0) continue;
        await new Promise<void>((resolve) => {
          wake = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      return null;
    },
    async stop() {
      if (rescanTimer) clearInterval(rescanTimer);
      if (litterTimer) clearInterval(litterTimer);
      if (claimTimer) clearInterval(claimTimer);
      await Promise.all([sweepClaims.idle(), recover.idle(), removeLitter.idle()]);
      for (const timer of unsettled.values()) clearTimeout(timer);
      unsettled.clear();
      for (const { timer, run } of postponed.values()) {
        clearTimeout(timer);
        await run();
      }
      await watcher?.close();
    },
  };
}
