import { appendFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { JwError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';
import type { RequestBody } from './request.js';

export interface DeadLetterFileOptions {
  /** The live file. Rotated ones are `PATH.1` (the newest) … `PATH.{maxFiles}`. */
  path: string;
  /** The live file is rotated before a line would take it past this. Default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept; 0 keeps none (the live file is cut instead). Default 5. */
  maxFiles?: number;
  /** The live and rotated files together; the oldest rotated ones go first. Default 100 MiB. */
  maxTotalBytes?: number;
  /** Rotated files last written longer ago than this are removed; 0 keeps them. Default 0. */
  maxAgeMs?: number;
  /** Payload bytes kept in one line; the rest is cut and the line marked `truncated`. Default 1 MiB. */
  maxPayloadBytes?: number;
  logger?: Logger;
}

export const DEAD_LETTER_FILE_DEFAULTS = {
  maxBytes: 10 * 1024 * 1024,
  maxFiles: 5,
  maxTotalBytes: 100 * 1024 * 1024,
  maxAgeMs: 0,
  maxPayloadBytes: 1024 * 1024,
} as const;

type Limits = Required<Omit<DeadLetterFileOptions, 'logger' | 'path'>>;

/** What is known of a delivery that is dead-lettered. */
export interface DeadLetter {
  transport: string;
  workerId: string;
  error: JwError;
  /** The job id, when the request had a valid one. */
  jobId?: string | undefined;
  /** The delivery's label (a message sequence, a file name). */
  delivery?: string | undefined;
  /** The request as received. */
  payload: RequestBody;
}

/** One line of the file. */
export interface DeadLetterLine {
  time: string;
  transport: string;
  workerId: string;
  reason: string;
  errorCode: string;
  jobId?: string;
  delivery?: string;
  /** Size of the whole payload in bytes. */
  payloadBytes: number;
  /** The payload as text when it is UTF-8 … */
  payload?: string;
  /** … else base64. */
  payloadBase64?: string;
  /** Set when the payload was cut to `maxPayloadBytes`. */
  truncated?: true;
}

/** How often, at most, a write looks for rotated files past their age. */
const AGE_CHECK_MS = 60_000;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bytesOf(payload: RequestBody): Uint8Array {
  if (payload instanceof Uint8Array) return payload;
  return Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
}

export function deadLetterLine(letter: DeadLetter, maxPayloadBytes: number, now = new Date()) {
  const bytes = bytesOf(letter.payload);
  const kept = bytes.subarray(0, maxPayloadBytes);
  const line: DeadLetterLine = {
    time: now.toISOString(),
    transport: letter.transport,
    workerId: letter.workerId,
    reason: letter.error.message,
    errorCode: letter.error.code,
    ...(letter.jobId === undefined ? {} : { jobId: letter.jobId }),
    ...(letter.delivery === undefined ? {} : { delivery: letter.delivery }),
    payloadBytes: bytes.byteLength,
  };
  try {
    // A cut can split a multi-byte character: text only when it decodes cleanly.
    line.payload = utf8.decode(kept);
  } catch {
    line.payloadBase64 = Buffer.from(kept).toString('base64');
  }
  if (kept.byteLength < bytes.byteLength) line.truncated = true;
  return line;
}

function missing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Dead letters as JSON lines on local disk, rotated by size and kept within a total
 * size and an age. One writer per file: lines are appended in order by one queue.
 * `write` never rejects: a full or read-only disk is logged (once until it works
 * again), the worker goes on.
 */
export class DeadLetterFile {
  readonly path: string;
  readonly #o: Limits;
  readonly #logger: Logger;
  /** Size of the live file; read from disk on the first write and after a failure. */
  #size: number | undefined;
  #queue: Promise<void> = Promise.resolve();
  #failing = false;
  #prunedAt = 0;

  constructor(options: DeadLetterFileOptions) {
    this.path = path.resolve(options.path);
    this.#o = { ...DEAD_LETTER_FILE_DEFAULTS };
    for (const key of Object.keys(DEAD_LETTER_FILE_DEFAULTS) as (keyof Limits)[]) {
      const value = options[key];
      if (value !== undefined) this.#o[key] = value;
    }
    this.#logger = options.logger ?? silentLogger;
  }

  /** Appends one line; resolves once it is on disk or the failure is logged. */
  write(letter: DeadLetter): Promise<void> {
    const text = `${JSON.stringify(deadLetterLine(letter, this.#o.maxPayloadBytes))}\n`;
    this.#queue = this.#queue.then(() => this.#append(text));
    return this.#queue;
  }

  async #append(text: string): Promise<void> {
    try {
      if (this.#size === undefined) {
        await mkdir(path.dirname(this.path), { recursive: true });
        this.#size = await stat(this.path).then(
          (s) => s.size,
          () => 0,
        );
        await this.#prune();
      } else if (this.#o.maxAgeMs > 0 && Date.now() - this.#prunedAt > AGE_CHECK_MS) {
        await this.#prune();
      }
      const bytes = Buffer.byteLength(text);
      if (this.#size > 0 && this.#size + bytes > this.#o.maxBytes) await this.#rotate();
      await appendFile(this.path, text, { mode: 0o600 });
      this.#size += bytes;
      if (this.#failing) this.#logger.info({ file: this.path }, 'dead-letter file written again');
      this.#failing = false;
    } catch (error) {
      // A short write may have left part of the line: look at the file again next time.
      this.#size = undefined;
      if (!this.#failing)
        this.#logger.error(
          { err: error, file: this.path },
          'dead-letter file cannot be written; dead letters are only logged',
        );
      this.#failing = true;
    }
  }

  /** PATH.{n-1} → PATH.{n} … PATH → PATH.1, then what is over the limits goes. */
  async #rotate(): Promise<void> {
    const { maxFiles } = this.#o;
    if (maxFiles === 0) await rm(this.path, { force: true });
    for (let n = maxFiles; n >= 1; n--) {
      const from = n === 1 ? this.path : `${this.path}.${n - 1}`;
      await rename(from, `${this.path}.${n}`).catch((error) => {
        if (!missing(error)) throw error;
      });
    }
    this.#size = 0;
    await this.#prune();
  }

  /** Removes rotated files past `maxFiles`, older than `maxAgeMs`, or over `maxTotalBytes`. */
  async #prune(): Promise<void> {
    const dir = path.dirname(this.path);
    const base = path.basename(this.path);
    const rotated: { n: number; file: string }[] = [];
    for (const name of await readdir(dir)) {
      const match = /^\.(\d+)$/.exec(name.slice(base.length));
      if (name.startsWith(base) && match)
        rotated.push({ n: Number(match[1]), file: path.join(dir, name) });
    }
    rotated.sort((a, b) => a.n - b.n);
    // The live file grows up to maxBytes: the rotated ones keep the rest of the total.
    let total = this.#o.maxBytes;
    const now = Date.now();
    this.#prunedAt = now;
    // Higher numbers are older: once one goes, every older one goes too.
    let dropping = false;
    for (const { n, file } of rotated) {
      const info = await stat(file).catch(() => undefined);
      if (!info) continue;
      const old = this.#o.maxAgeMs > 0 && now - info.mtimeMs > this.#o.maxAgeMs;
      dropping ||= n > this.#o.maxFiles || old || total + info.size > this.#o.maxTotalBytes;
      if (dropping) {
        await rm(file, { force: true });
        this.#logger.debug({ file }, 'old dead-letter file removed');
      } else {
        total += info.size;
      }
    }
  }
}
