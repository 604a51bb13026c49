// An example build step: reads staged input, writes an artifact, logs on both streams.
import fs from 'node:fs';

const words = fs.readFileSync('input.txt', 'utf8').trim().split(/\s+/);
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync(
  'dist/report.txt',
  `${process.env.GREETING}, ${process.env.JW_JOB_ID}: ${words.length} words\n`,
);
fs.writeFileSync('dist/scratch.tmp', 'excluded by artifacts.exclude\n');
console.log(`counted ${words.length} words`);
console.error('build.mjs: done');
