// Runs one job through runJob in its own process and prints what it cost as one JSON
// line: time, peak RSS, RSS before, and the worst event-loop gap in each phase (a 10 ms
// timer's worst lateness, which is what a lease renewal or a heartbeat would suffer).
// argv: jobsDir workspacesDir id
import os from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseRequest, runJob, silentLogger } from '@jw/core';

const [jobsDir, workspacesDir, id] = process.argv.slice(2);
const TICK = 10;
const gaps = {};
const durations = {};
let phase = 'claim';
let phaseStart = performance.now();
const enter = (next) => {
  const now = performance.now();
  durations[phase] = (durations[phase] ?? 0) + (now - phaseStart);
  phase = next;
  phaseStart = now;
};
let last = performance.now();
let peakHeapMiB = 0;
let ticks = 0;
const timer = setInterval(() => {
  // The JS heap's share of the peak, sampled every 10th tick (memoryUsage walks the heap spaces).
  if (++ticks % 10 === 0)
    peakHeapMiB = Math.max(peakHeapMiB, process.memoryUsage().heapUsed / 2 ** 20);
  const now = performance.now();
  const late = now - last - TICK;
  if (late > (gaps[phase] ?? 0)) gaps[phase] = late;
  last = now;
}, TICK);
const histogram = monitorEventLoopDelay({ resolution: 10 });
histogram.enable();

const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
const outcome = await runJob(parseRequest({ id, force: true }), {
  jobsDir,
  workspacesDir,
  worker: {
    id: 'bench',
    hostname: os.hostname(),
    pid: process.pid,
    transport: 'bench',
    version: '0',
  },
  leaseMs: 30_000,
  killGraceMs: 2_000,
  env: { PATH: process.env.PATH, HOME: process.env.HOME },
  logger: silentLogger,
  onEvent: (event) => { if (global.gc) { global.gc(); process.stderr.write(`${event.state} heap ${(process.memoryUsage().heapUsed/2**20).toFixed(1)} rss ${(process.memoryUsage().rss/2**20).toFixed(1)} ext ${(process.memoryUsage().external/2**20).toFixed(1)} ab ${(process.memoryUsage().arrayBuffers/2**20).toFixed(1)}\n`); } return (
    enter(
      ['claimed', 'staging', 'running', 'syncing'].includes(event.state) ? event.state : 'cleanup',
    )); },
});
if (global.gc) { global.gc(); process.stderr.write(`end heap ${(process.memoryUsage().heapUsed/2**20).toFixed(1)} rss ${(process.memoryUsage().rss/2**20).toFixed(1)}\n`); }
await outcome.delivered?.();
const ms = performance.now() - t0;
enter('done');
clearInterval(timer);
histogram.disable();
const status = outcome.kind === 'finished' ? outcome.result.status : outcome.kind;
process.stdout.write(
  `${JSON.stringify({
    ms,
    status,
    artifacts: outcome.manifest?.artifacts?.length,
    rssBeforeMiB: rssBefore / 1024 / 1024,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    peakHeapMiB,
    gaps,
    durations,
    worstGapMs: Math.max(0, ...Object.values(gaps)),
    histogramMaxMs: histogram.max / 1e6,
  })}\n`,
);
