import { Transform, type TransformCallback } from 'node:stream';
import type { Logger } from './logger.js';

/** What a secret's value is replaced with in logs (SPEC 3). */
export const SECRET_MARK = '***';

const EMPTY = Buffer.alloc(0);

/** Values too short to mask without hiding ordinary text (a secret `1` would blank every digit). */
const MIN_SECRET_LENGTH = 3;

/** The distinct secret values worth masking, longest first (so the longest match wins). */
export function secretValues(values: Iterable<string | undefined>): string[] {
  const set = new Set<string>();
  for (const v of values) if (v !== undefined && v.length >= MIN_SECRET_LENGTH) set.add(v);
  return [...set].sort((a, b) => b.length - a.length);
}

/** Replaces every secret in a string (error texts, commands, log lines). */
export function maskText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(SECRET_MARK);
  return out;
}

/**
 * A stream that replaces secrets as they pass, also when a value is split across two
 * writes. It holds back only the tail of a chunk that could begin a secret, so other
 * output is passed on at once and memory stays bounded by the longest secret.
 */
export class SecretMasker extends Transform {
  readonly #secrets: Buffer[];
  readonly #mark = Buffer.from(SECRET_MARK);
  #carry: Buffer = EMPTY;

  constructor(secrets: readonly string[]) {
    // Larger buffers than the default 16 KiB: fewer, larger writes into the log.
    super({ highWaterMark: 1 << 20 });
    this.#secrets = secretValues(secrets).map((s) => Buffer.from(s));
  }

  /** The masked output of one more chunk (a possible start of a secret is held back). */
  maskChunk(chunk: Buffer): Buffer {
    const buf = this.#carry.length > 0 ? Buffer.concat([this.#carry, chunk]) : chunk;
    const { out, rest } = this.#scan(buf, false);
    this.#carry = rest;
    return out;
  }

  /** What is held back, at the end of the output. */
  takeHeld(): Buffer {
    const { out } = this.#scan(this.#carry, true);
    this.#carry = EMPTY;
    return out;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.maskChunk(chunk);
    done(null, out.length > 0 ? out : undefined);
  }

  override _flush(done: TransformCallback): void {
    const out = this.takeHeld();
    done(null, out.length > 0 ? out : undefined);
  }

  #scan(buf: Buffer, final: boolean): { out: Buffer; rest: Buffer } {
    const parts: Buffer[] = [];
    let i = 0;
    for (;;) {
      let at = -1;
      let len = 0;
      for (const s of this.#secrets) {
        const p = buf.indexOf(s, i);
        // Longest first: a later, equal position never replaces a longer match.
        if (p !== -1 && (at === -1 || p < at)) {
          at = p;
          len = s.length;
        }
      }
      if (at === -1) break;
      parts.push(buf.subarray(i, at), this.#mark);
      i = at + len;
    }
    const hold = final ? 0 : this.#prefixHeld(buf, i);
    const rest = hold > 0 ? Buffer.from(buf.subarray(buf.length - hold)) : EMPTY;
    // The common case, no secret in the chunk, passes it on without a copy.
    if (parts.length === 0) return { out: buf.subarray(0, buf.length - hold), rest };
    parts.push(buf.subarray(i, buf.length - hold));
    return { out: Buffer.concat(parts), rest };
  }

  /** Length of the longest tail of `buf` (after `from`) that is the start of some secret. */
  #prefixHeld(buf: Buffer, from: number): number {
    let best = 0;
    for (const s of this.#secrets) {
      const most = Math.min(s.length - 1, buf.length - from);
      for (let k = most; k > best; k--) {
        if (buf.compare(s, 0, k, buf.length - k, buf.length) === 0) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

/** A value with every secret masked in its strings (an Error as its type, message and stack). */
export function maskValue(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return maskText(value, secrets);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    const { name, message, stack } = value;
    const code = (value as NodeJS.ErrnoException).code;
    return {
      type: name,
      message: maskText(message, secrets),
      ...(stack ? { stack: maskText(stack, secrets) } : {}),
      ...(code ? { code } : {}),
    };
  }
  if (Array.isArray(value)) return value.map((v) => maskValue(v, secrets, depth + 1));
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, maskValue(v, secrets, depth + 1)]),
  );
}

/** The worker's log lines about a job, with the job's secrets masked (SPEC 3). */
export function maskedLogger(logger: Logger, secrets: readonly string[]): Logger {
  if (secrets.length === 0) return logger;
  const wrap =
    (level: keyof Logger) =>
    (obj: unknown, msg?: string): void =>
      logger[level](maskValue(obj, secrets), msg === undefined ? msg : maskText(msg, secrets));
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
