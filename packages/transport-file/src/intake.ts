import { lstat, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Delivery } from '@jw/core';
import { deadLetterEntry } from './dead-letter.js';
import { deliveryOf } from './delivery.js';
import { takenName } from './orphans.js';
import { writeQueueFile } from './queue-files.js';
import type { QueueState } from './queue-state.js';
import { type Entry, inspectEntry, looksUnfinished, readRegular } from './request-file.js';

type Read = Exclude<Awaited<ReturnType<typeof readRegular>>, undefined>;

/** A file cut off mid-JSON is dead-lettered only once unchanged for this many stability windows. */
const SETTLE_WINDOWS = 5;

/**
 * Taking requests out of `pending/`: a file is renamed into `processing/` once it is a
 * whole request (its size and mtime stopped moving, its JSON complete); what is not a
 * request goes to `failed/`.
 */
export class Intake {
  readonly #settleMs: number;
  /** Files that do not parse yet, looked at again when their settling time is over. */
  readonly #unsettled = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly q: QueueState,
    private readonly stableMs: number,
  ) {
    this.#settleMs = SETTLE_WINDOWS * stableMs;
  }

  /** Takes `pending/{name}` if it is a request ready to run; undefined when it is not (yet). */
  async take(name: string, signal: AbortSignal): Promise<Delivery | undefined> {
    const { q } = this;
    const source = path.join(q.dirs.pending, name);
    const entry = await inspectEntry(source, q.root);
    if (entry.kind === 'gone') return undefined;
    if (entry.kind === 'bad') {
      if (q.stuck.get(name) !== entry.ino)
        await deadLetterEntry(q, source, name, entry.reason, entry.ino);
      return undefined;
    }
    const stable = await this.#isStable(source, entry);
    if (!stable) {
      q.addCandidate(name);
      return undefined;
    }
    // Changed recently (written in place, or just renamed in): a file cut off mid-JSON waits for its writer.
    const age = Date.now() - Math.max(entry.stats.mtimeMs, entry.stats.ctimeMs);
    let early: Read | undefined;
    if (age < this.#settleMs) {
      // What the stability check has just read is this look: the file is not read twice.
      early = stable === true ? await readRegular(entry.file) : stable;
      if (!early) return undefined;
      if ('bad' in early) {
        await deadLetterEntry(q, source, name, early.bad);
        return undefined;
      }
      if (looksUnfinished(early.text)) {
        q.context.logger.debug(
          { file: name },
          'request file is not complete JSON yet; looking again later',
        );
        this.#retryWhenSettled(name, this.#settleMs - age);
        return undefined;
      }
    }
    if (signal.aborted) return undefined;
    const taken = takenName(name);
    const target = path.join(q.dirs.processing, taken);
    try {
      await rename(source, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // another worker took it
      throw error;
    }
    q.inFlight.add(taken);
    try {
      const read =
        early && !entry.link
          ? await unchangedSince(target, early)
          : await readRegular(entry.link ? entry.file : target);
      if (!read || 'bad' in read) {
        await deadLetterEntry(q, target, name, read ? read.bad : 'a link whose file went away');
        q.inFlight.delete(taken);
        return undefined;
      }
      // What runs is kept in processing/ and done/, not a link to a file that may change.
      if (entry.link) await writeQueueFile(target, read.text);
      return deliveryOf(q, name, taken, read.text);
    } catch (error) {
      q.inFlight.delete(taken);
      throw error;
    }
  }

  /** Stopping: no file is looked at again. */
  stop(): void {
    for (const timer of this.#unsettled.values()) clearTimeout(timer);
    this.#unsettled.clear();
  }

  /**
   * A young file is looked at again until its size and mtime stop moving. A young file
   * that is whole JSON is stable at once, and what was read of it is returned.
   */
  async #isStable(source: string, first: Entry & { kind: 'file' }): Promise<boolean | Read> {
    const { stableMs } = this;
    if (Date.now() - first.stats.mtimeMs >= stableMs) return true;
    // No writing can turn whole JSON into other JSON: a request renamed in is taken at once.
    const now = await readRegular(first.file);
    if (now && !('bad' in now) && !looksUnfinished(now.text)) return now;
    await new Promise((r) => setTimeout(r, stableMs));
    const second = await inspectEntry(source, this.q.root);
    return (
      second.kind === 'file' &&
      second.stats.ino === first.stats.ino &&
      second.stats.size === first.stats.size &&
      second.stats.mtimeMs === first.stats.mtimeMs &&
      Date.now() - second.stats.mtimeMs >= stableMs
    );
  }

  #retryWhenSettled(name: string, delayMs: number): void {
    clearTimeout(this.#unsettled.get(name));
    this.#unsettled.set(
      name,
      setTimeout(() => {
        this.#unsettled.delete(name);
        this.q.addCandidate(name);
      }, delayMs),
    );
  }
}

/**
 * What was read before the rename, if the file taken is still that file (same inode,
 * size and mtime): one stat instead of reading it again. Otherwise it is read again.
 */
async function unchangedSince(file: string, before: Read): Promise<Read | undefined> {
  if ('bad' in before) return readRegular(file);
  const now = await lstat(file).catch(() => undefined);
  const same =
    now?.isFile() &&
    now.ino === before.stats.ino &&
    now.size === before.stats.size &&
    now.mtimeMs === before.stats.mtimeMs;
  return same ? before : readRegular(file);
}
