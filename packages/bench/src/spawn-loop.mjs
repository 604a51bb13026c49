// A bare node starting `sh -c true` N times, C at a time: the floor of a node worker's
// throughput of trivial steps (each spawn blocks node's thread until the exec).
// argv: N C. Prints the jobs per second, node's own start left out.
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const [n, c] = process.argv.slice(2).map(Number);
let left = n;
const lane = async () => {
  while (left-- > 0)
    await new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', resolve);
    });
};
const t = performance.now();
await Promise.all(Array.from({ length: c }, lane));
process.stdout.write(`${n / ((performance.now() - t) / 1000)}\n`);
