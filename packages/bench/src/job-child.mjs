// Runs one job through runJob in its own process and prints what it cost as one JSON
// line: time, peak RSS, RSS before, and the worst event-loop gap in each phase (a 10 ms
// timer's worst lateness, which is what a lease renewal or a heartbeat would suffer).
// argv: jobsDir workspacesDir id
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseRequest, runJob, silentLogger } from '@jw/core';

const [jobsDir, workspacesDir, id] = process.argv.slice(2);

/**
 * This process's peak RSS: VmHWM, its own address space's high-water mark. Not
 * `resourceUsage().maxRSS`: Linux keeps the largest of every address space the process
 * had, so it starts at the RSS of the bench when it forked this child (226 MiB read as
 * "worker growth" after the 300k-file section).
 */
const peakRssMiB = () =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
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
  onEvent: (event) =>
    enter(
      ['claimed', 'staging', 'running', 'syncing'].includes(event.state) ? event.state : 'cleanup',
    ),
});
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
    peakRssMiB: peakRssMiB(),
    peakHeapMiB,
    gaps,
    durations,
    worstGapMs: Math.max(0, ...Object.values(gaps)),
    histogramMaxMs: histogram.max / 1e6,
  })}\n`,
);
