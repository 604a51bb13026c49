import { randomBytes } from 'node:crypto';

const POOL_BYTES = 2048;
let pool = Buffer.alloc(0);
let used = 0;

/**
 * `bytes` random bytes as hex, cut from a pooled buffer: a job takes a handful of
 * tokens and temp names, and each `randomBytes` call is a synchronous getrandom on the
 * worker's main thread (as `crypto.randomUUID` caches its entropy for the same reason).
 */
export function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, bytes));
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}
