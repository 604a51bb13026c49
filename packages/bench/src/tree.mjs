import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A realistic mix of file sizes: mostly 4–8 KiB sources, some 16 and 64 KiB (14 KiB on average). */
const SIZES_KIB = [4, 4, 4, 4, 8, 8, 16, 64];
const FILL = randomBytes(64 * 1024);

export const fileOf = (i, count) => `d${i % Math.max(1, Math.ceil(count / 100))}/f${i}.bin`;
export const sizeOf = (i) => SIZES_KIB[i % SIZES_KIB.length] * 1024;
export const averageKiB = SIZES_KIB.reduce((a, b) => a + b, 0) / SIZES_KIB.length;

/** Writes `count` files of `sizeOf(i)` bytes under `dir` (100 per folder), 64 at a time. */
export async function makeTree(dir, count, { size = sizeOf } = {}) {
  const dirs = Math.max(1, Math.ceil(count / 100));
  for (let d = 0; d < dirs; d++) await mkdir(path.join(dir, `d${d}`), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const bytes = Buffer.from(FILL.subarray(0, size(i)));
      bytes.writeUInt32LE(i, 0);
      await writeFile(path.join(dir, fileOf(i, count)), bytes);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
}

/** A job.json whose one step runs mutate.mjs over a tree of `count` files. */
export function mutateStep(count) {
  const script = new URL('./mutate.mjs', import.meta.url).pathname;
  return `${JSON.stringify(process.execPath)} ${JSON.stringify(script)} ${count}`;
}
