import {
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  openSync,
  readSync,
  unlinkSync,
} from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** What a step said about how far it is: a percentage, a message, or both. */
export interface ProgressReport {
  percent?: number;
  message?: string;
}

/** A progress report as sent on a job's events and kept in the manifest. */
export interface JobProgress extends ProgressReport {
  step: { index: number; name: string };
  /** ISO time of the report. */
  at: string;
}

const MAX_MESSAGE = 500;

function clampPercent(value: unknown): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  return Math.min(100, Math.max(0, value));
}

function cleanMessage(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim().slice(0, MAX_MESSAGE);
  return text === '' ? undefined : text;
}

/** A report from its parts; undefined when it says nothing. */
export function progressReport(percent: unknown, message: unknown): ProgressReport | undefined {
  const p = clampPercent(percent);
  const m = cleanMessage(message);
  if (p === undefined && m === undefined) return undefined;
  return { ...(p === undefined ? {} : { percent: p }), ...(m === undefined ? {} : { message: m }) };
}

/**
 * One line a step appended to `$JW_PROGRESS`: `40 compiling`, `40% compiling`, a bare
 * message, or JSON `{"percent": 40, "message": "compiling"}`. Blank lines say nothing.
 */
export function parseProgressLine(line: string): ProgressReport | undefined {
  const text = line.trim();
  if (text === '') return undefined;
  if (text.startsWith('{')) {
    try {
      const value = JSON.parse(text) as { percent?: unknown; message?: unknown };
      if (typeof value === 'object' && value !== null)
        return progressReport(value.percent, value.message);
    } catch {
      // Not JSON after all: taken as a message.
    }
  }
  const match = /^(\d+(?:\.\d+)?)%?(?:\s+(.*))?$/s.exec(text);
  if (match) return progressReport(Number(match[1]), match[2]);
  return progressReport(undefined, text);
}

/**
 * Passes reports on at most once per `intervalMs`; a report that comes sooner waits
 * and is replaced by any later one, so the last report is always sent (by `flush`).
 */
export class ProgressThrottle<T> {
  readonly #send: (value: T) => void;
  readonly #intervalMs: number;
  #last = Number.NEGATIVE_INFINITY;
  #pending: { value: T } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(send: (value: T) => void, intervalMs = 500) {
    this.#send = send;
    this.#intervalMs = intervalMs;
  }

  push(value: T): void {
    this.#pending = { value };
    const wait = this.#last + this.#intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), wait);
  }

  /** Sends the waiting report now, if there is one. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    this.#last = Date.now();
    this.#send(pending.value);
  }
}

/** The progress file of a workspace: beside it, never inside (it would be synced as an artifact). */
export function progressFileOf(workspace: string): string {
  return path.join(path.dirname(workspace), `.${path.basename(workspace)}.progress`);
}

// A step may put a link or a FIFO in the file's place: never followed, never waited on.
const { O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_TRUNC, O_WRONLY } = constants;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK;
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
/** What the last read at the end of a step takes synchronously; more is read in turns. */
const SYNC_TAIL_BYTES = 64 * 1024;

/**
 * Follows the file a step appends progress lines to (`JW_PROGRESS`), reading what was
 * added every `pollMs`. `close` reads the rest and removes the file.
 */
export class ProgressFile {
  readonly file: string;
  readonly #onReport: (report: ProgressReport) => void;
  #offset = 0;
  #partial = '';
  readonly #decoder = new StringDecoder('utf8');
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  /** One buffer per file, reused by every read (reads never overlap), not 64 KiB of garbage per poll. */
  #buffer: Buffer | undefined;

  private constructor(file: string, onReport: (report: ProgressReport) => void) {
    this.file = file;
    this.#onReport = onReport;
  }

  /** Creates the (empty, private) file and starts following it. */
  static async create(
    file: string,
    onReport: (report: ProgressReport) => void,
    pollMs = 200,
    owner?: { uid: number; gid: number },
  ): Promise<ProgressFile> {
    // Synchronous, like the workspace beside it: local disk, microseconds (workspaces.ts).
    const fd = openSync(file, CREATE_FLAGS, 0o600);
    try {
      // A step run as another user (`--run-as`) must be able to append to it.
      if (owner) fchownSync(fd, owner.uid, owner.gid);
    } finally {
      closeSync(fd);
    }
    const follower = new ProgressFile(file, onReport);
    follower.#timer = setInterval(() => follower.#poll(), pollMs);
    follower.#timer.unref();
    return follower;
  }

  #poll(): void {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
  }

  async #read(): Promise<void> {
    const handle: FileHandle | undefined = await open(this.file, READ_FLAGS).catch(() => undefined);
    if (!handle) return;
    try {
      if (!(await handle.stat()).isFile()) return;
      const buffer = this.#chunk();
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#offset);
        if (bytesRead === 0) break;
        this.#took(buffer, bytesRead);
      }
    } catch {
      // A step may have replaced or truncated the file: what it wrote before counts.
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /**
   * The read at the end of a step, synchronously when what is left is small (the common
   * case: a trip through the thread pool per call costs more than the calls). False when
   * there is more than that to read: the caller reads it in turns.
   */
  #readTailSync(): boolean {
    let fd: number;
    try {
      fd = openSync(this.file, READ_FLAGS);
    } catch {
      return true;
    }
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) return true;
      if (info.size - this.#offset > SYNC_TAIL_BYTES) return false;
      const buffer = this.#chunk();
      for (;;) {
        const bytesRead = readSync(fd, buffer, 0, buffer.length, this.#offset);
        if (bytesRead === 0) return true;
        this.#took(buffer, bytesRead);
      }
    } catch {
      return true;
    } finally {
      closeSync(fd);
    }
  }

  #chunk(): Buffer {
    this.#buffer ??= Buffer.allocUnsafe(64 * 1024);
    return this.#buffer;
  }

  #took(buffer: Buffer, bytesRead: number): void {
    this.#offset += bytesRead;
    this.#take(this.#decoder.write(buffer.subarray(0, bytesRead)));
  }

  #take(text: string): void {
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      const report = parseProgressLine(line);
      if (report) this.#onReport(report);
    }
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#reading;
    if (!this.#readTailSync()) await this.#read();
    // A last line without its newline still counts once the step is over.
    const rest = this.#partial;
    this.#partial = '';
    const report = parseProgressLine(rest);
    if (report) this.#onReport(report);
    try {
      unlinkSync(this.file);
    } catch {
      // Gone already (the step removed it): nothing to do.
    }
  }
}
