// A step for the bench, run in a workspace staged from makeTree(count): what a build does
// to a tree. 1 % of the files rewritten with other bytes of the same size (only hashing
// tells), 1 % touched (mtime moved, same bytes: not a change), 10 new files.
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { fileOf } from './tree.mjs';

const count = Number(process.argv[2]);
const later = new Date(Date.now() + 2000);
const jobs = [];
for (let i = 0; i < count; i += 100) {
  const file = fileOf(i, count);
  jobs.push(
    readFile(file).then(async (bytes) => {
      bytes[8] ^= 0xff;
      await writeFile(file, bytes);
      await utimes(file, later, later);
    }),
  );
  const same = fileOf(Math.min(count - 1, i + 50), count);
  if (i + 50 < count) jobs.push(utimes(same, later, later));
}
await mkdir('out', { recursive: true });
for (let n = 0; n < 10; n++) jobs.push(writeFile(`out/built-${n}.js`, `// ${n}\n`.repeat(400)));
await Promise.all(jobs);
