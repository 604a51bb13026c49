// What a job costs against the shell doing the same: staging, finding and copying back
// changes, a whole small job, big trees (memory, event-loop gaps, linearity), a 1 GiB log.

import { readFileSync } from 'node:fs';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as core from '@jw/core';
import { measure } from '../report.mjs';
import { makeTree, mutateStep } from '../tree.mjs';
import { bin, compare, cpuSeconds, here, MiB, rssMiB, run, sleep, tempDir } from '../util.mjs';
import { fileClient, startWorker } from '../workers.mjs';
import { daemonOf, limitOf } from './transports.mjs';

const sh = (script) => run('/bin/sh', ['-c', script], { maxBuffer: 64 * MiB });
const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;
const gone = (p) => () => rm(p, { recursive: true, force: true });

/** The shell's whole job: stage, run the step, copy back only what differs, remove. */
const shellJob = (src, ws, out, step) =>
  sh(
    `mkdir -p ${q(ws)} ${q(out)} && cd ${q(src)} && cp -a $(ls -A | grep -vx results) ${q(ws)}/ && ` +
      `cd ${q(ws)} && ${step} && rsync -a -m --compare-dest=${q(`${src}/`)} ${q(`${ws}/`)} ${q(`${out}/`)} && ` +
      `cd / && rm -rf ${q(ws)}`,
  );
const SHELL_JOB = 'cp -a + step + rsync -a -m --compare-dest=SRC + rm -rf';

export async function versionCpu(ctx) {
  for (const app of ['file-worker', 'nats-fs-worker', 'mqtt-fs-worker']) {
    const { medians } = await compare(
      [
        { run: async () => (await cpuSeconds(process.execPath, [bin(app), '--version'])) * 1000 },
        { run: async () => (await cpuSeconds(process.execPath, ['-e', '0'])) * 1000 },
      ],
      ctx.cfg.rounds,
    );
    measure({
      name: `${app} --version, CPU (user + system)`,
      value: medians[0],
      unit: 'ms',
      baseline: 'node -e 0',
      baselineValue: medians[1],
      goal: { ratioAtMost: 1.5 },
    });
  }
}

export async function staging(ctx) {
  const files = ctx.cfg.quick ? 1000 : 10_000;
  const root = await tempDir('jw-bench-stage-');
  const job = path.join(root, 'job');
  await makeTree(job, files);
  const at = (n) => path.join(root, n);
  // Staging takes the before snapshot on its way (one walk), as runJob does.
  const stageAndSnapshot = async () => {
    const ws = await core.createWorkspace(at('wss'), 'bench');
    await core.stageJob(job, ws);
  };
  const s = await compare(
    [
      { run: stageAndSnapshot, reset: gone(at('wss')) },
      { run: () => run('cp', ['-a', job, at('cp-a')]), reset: gone(at('cp-a')) },
      {
        run: () => cp(job, at('fs-cp'), { recursive: true, preserveTimestamps: true }),
        reset: gone(at('fs-cp')),
      },
    ],
    ctx.cfg.rounds,
    { sync: !ctx.cfg.quick },
  );
  const name = `stage + before snapshot, ${files} files of 4–64 KiB`;
  measure({
    name,
    value: s.medians[0],
    unit: 'ms',
    baseline: 'cp -a',
    baselineValue: s.medians[1],
  });
  measure({
    name,
    value: s.medians[0],
    unit: 'ms',
    baseline: 'fs.promises.cp',
    baselineValue: s.medians[2],
  });

  const ws = await core.createWorkspace(at('wss'), 'bench');
  const { snapshot: before } = await core.stageJob(job, ws);
  await sh(`cd ${q(ws)} && ${mutateStep(files)}`);
  const f = await compare(
    [
      {
        run: async () => {
          await mkdir(at('results'), { recursive: true });
          const changes = await core.findChanges(before, { workspace: ws, source: job });
          await core.syncArtifacts(ws, at('results'), changes);
        },
        reset: gone(at('results')),
      },
      {
        run: () =>
          sh(`rsync -a -m --compare-dest=${q(`${job}/`)} ${q(`${ws}/`)} ${q(at('rsync'))}/`),
        reset: gone(at('rsync')),
      },
    ],
    ctx.cfg.rounds,
    { sync: !ctx.cfg.quick },
  );
  measure({
    name: `find + copy back changes of ${files} files (1 % same-size rewrites, 1 % touched, 10 new)`,
    value: f.medians[0],
    unit: 'ms',
    baseline: 'rsync -a -m --compare-dest=SRC',
    baselineValue: f.medians[1],
  });
}

const runJobOptions = (root) => ({
  jobsDir: path.join(root, 'jobs'),
  workspacesDir: path.join(root, 'ws'),
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
  logger: core.silentLogger,
});

async function makeJob(jobsDir, id, files, steps, sizeKiB) {
  const dir = path.join(jobsDir, id);
  await makeTree(dir, files, sizeKiB ? { size: () => sizeKiB * 1024 } : {});
  await writeFile(path.join(dir, 'job.json'), JSON.stringify({ steps }));
  return dir;
}

export async function smallJob(ctx) {
  const step = 'echo ok > out.txt';
  const limit = await limitOf('nats', ctx);
  const d = await daemonOf('nats', ctx);
  const root = await tempDir('jw-bench-small-');
  const src = await makeJob(path.join(root, 'src'), 'small', 100, [step], 4);
  await makeJob(path.join(root, 'jobs'), 'small', 100, [step], 4);
  await makeJob(path.join(d.dir, 'jobs'), 'small', 100, [step], 4);
  const options = runJobOptions(root);
  const { medians } = await compare(
    [
      {
        run: () =>
          core
            .runJob(core.parseRequest({ id: 'small', force: true }), options)
            .then((o) => o.delivered?.()),
      },
      {
        run: () => shellJob(src, path.join(root, 'shell-ws'), path.join(root, 'shell-out'), step),
        reset: gone(path.join(root, 'shell-out')),
      },
      {
        run: async () => {
          const t = performance.now();
          await d.client.submit({ id: 'small', force: true });
          await d.client.result('small');
          return performance.now() - t;
        },
      },
      { run: () => limit() },
    ],
    ctx.cfg.rounds * 2,
  );
  measure({
    name: 'whole small job (100 × 4 KiB), runJob',
    value: medians[0],
    unit: 'ms',
    baseline: SHELL_JOB,
    baselineValue: medians[1],
    goal: { ratioAtMost: 1.1 },
  });
  measure({
    name: 'whole small job (100 × 4 KiB), NATS worker waiting, publish → result',
    value: medians[2],
    unit: 'ms',
    baseline: `${SHELL_JOB} + NATS round trip`,
    baselineValue: medians[1] + medians[3],
    goal: { ratioAtMost: 2 },
  });
}

/** One job in a child process that reports time, peak RSS and event-loop gaps by phase. */
async function childJob(root, id) {
  const { stdout } = await run(
    process.execPath,
    [path.join(here, 'job-child.mjs'), path.join(root, 'jobs'), path.join(root, 'ws'), id],
    { env: { ...process.env, UV_THREADPOOL_SIZE: '16' }, maxBuffer: 16 * MiB },
  );
  const report = JSON.parse(stdout.trim().split('\n').at(-1));
  if (report.status !== 'success') throw new Error(`job ${id} ended ${report.status}`);
  return report;
}

/** A process's peak RSS so far (VmHWM), from /proc. */
const peakRssMiB = (pid) =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/**
 * The job run by a real file-worker binary: its RSS idle after a one-file warm-up job
 * (start-up done, code paths loaded), then its peak RSS over the big job, both from the
 * same process.
 */
async function workerJob(root, id, settleMs) {
  const worker = await startWorker('file', { dir: root, id: 'bench-big' });
  try {
    const client = await fileClient(path.join(root, 'queue'));
    await makeJob(path.join(root, 'jobs'), 'warm', 1, ['true'], 4);
    await client.submit({ id: 'warm', force: true });
    await client.result('warm');
    await sleep(settleMs);
    const idleMiB = rssMiB(worker.child.pid);
    await client.submit({ id, force: true });
    const result = await client.result(id, 30 * 60_000);
    if (result.status !== 'success') throw new Error(`job ${id} ended ${result.status}`);
    return { idleMiB, peakMiB: peakRssMiB(worker.child.pid) };
  } finally {
    await worker.stop();
  }
}

const fmtPhases = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');

export async function bigTrees(ctx) {
  // Linear from 1k to 300k files (issue 14); the shell baseline stops at 100k, where its
  // minutes say all there is to say about it.
  const sizes = ctx.cfg.quick ? [1000, 3000, 10_000] : [1000, 10_000, 100_000, 300_000];
  const perFile = {};
  for (const files of sizes) {
    const root = await tempDir(`jw-bench-big-${files}-`);
    const id = `big-${files}`;
    const src = await makeJob(path.join(root, 'jobs'), id, files, [mutateStep(files)]);
    const reports = [];
    const contenders = [
      {
        run: async () => {
          const r = await childJob(root, id);
          reports.push(r);
          return r.ms;
        },
      },
    ];
    if (files <= 100_000)
      contenders.push({
        run: () =>
          shellJob(
            src,
            path.join(root, 'shell-ws'),
            path.join(root, 'shell-out'),
            mutateStep(files),
          ),
        reset: gone(path.join(root, 'shell-out')),
      });
    const { medians } = await compare(
      contenders,
      files >= 100_000 || (ctx.cfg.quick && files >= 10_000)
        ? 1
        : files >= 10_000
          ? Math.min(ctx.cfg.rounds, 3)
          : ctx.cfg.rounds,
      { sync: !ctx.cfg.quick },
    );
    perFile[files] = medians[0] / files;
    measure({
      name: `a job over ${files} files of 4–64 KiB (step rewrites 1 %)`,
      value: medians[0],
      unit: 'ms',
      ...(medians.length > 1 ? { baseline: SHELL_JOB, baselineValue: medians[1] } : {}),
    });
    if (files === sizes.at(-1) || files >= 100_000) {
      // The goal is stated for 100k files; larger trees are reported against the same bound.
      // Against the same binary's own idle RSS in this run (issue 14): job-child carries
      // all of @jw/core and the bench's hooks, an idle worker binary does not.
      const w = await workerJob(root, id, ctx.cfg.quick ? 1000 : 3000);
      measure({
        name: `a job over ${files} files, peak RSS (VmHWM) of a file-worker binary`,
        value: w.peakMiB,
        unit: 'MiB',
        baseline: `1.5 × the same file-worker's idle RSS after a warm-up job (${w.idleMiB.toFixed(1)} MiB) + 40 MiB`,
        baselineValue: 1.5 * w.idleMiB + 40,
        goal: { ratioAtMost: 1 },
      });
      const worst = reports.reduce((a, b) => (a.peakRssMiB > b.peakRssMiB ? a : b));
      measure({
        name: `a job over ${files} files, peak RSS of job-child (runJob, full @jw/core, in-process hooks)`,
        value: worst.peakRssMiB,
        unit: 'MiB',
        baseline: `1.5 × job-child's own RSS before the job (${worst.rssBeforeMiB.toFixed(1)} MiB) + 40 MiB`,
        baselineValue: 1.5 * worst.rssBeforeMiB + 40,
        note: 'reported, not the goal: the goal is the worker binary above',
      });
      const gap = reports.reduce((a, b) => (a.worstGapMs > b.worstGapMs ? a : b));
      measure({
        name: `a job over ${files} files, worst event-loop gap (any phase)`,
        value: gap.worstGapMs,
        unit: 'ms',
        goal: { atMost: 250 },
        note: `gaps by phase (ms): ${fmtPhases(gap.gaps)}; phase times (ms): ${fmtPhases(gap.durations)}`,
      });
    }
    await rm(root, { recursive: true, force: true });
  }
  // Per-file cost of each larger tree against the 10k one (3k in --quick: the middle size).
  const small = sizes[1];
  for (const large of sizes.slice(2))
    measure({
      name: `cost per file at ${large} files against ${small} (linear: same)`,
      value: perFile[large] * 1000,
      unit: 'µs/file',
      baseline: `at ${small} files`,
      baselineValue: perFile[small] * 1000,
      goal: { ratioAtMost: 1.5 },
    });
}

export async function floodLog(ctx) {
  const bytes = ctx.cfg.quick ? 256 * MiB : 1024 * MiB;
  const root = await tempDir('jw-bench-flood-');
  const jobs = path.join(root, 'jobs');
  await mkdir(path.join(jobs, 'flood'), { recursive: true });
  await writeFile(
    path.join(jobs, 'flood', 'job.json'),
    JSON.stringify({ steps: [`head -c ${bytes} /dev/zero`] }),
  );
  const reports = [];
  const { medians } = await compare(
    [
      {
        run: async () => {
          const r = await childJob(root, 'flood');
          reports.push(r);
          return r.ms;
        },
      },
      {
        run: () => sh(`head -c ${bytes} /dev/zero > ${q(path.join(root, 'shell.log'))}`),
        reset: gone(path.join(root, 'shell.log')),
      },
    ],
    ctx.cfg.quick ? 1 : Math.min(ctx.cfg.rounds, 3),
    { sync: !ctx.cfg.quick },
  );
  const gib = (bytes / 1024 ** 3).toFixed(2);
  measure({
    name: `a step writing ${gib} GiB to its log, whole job`,
    value: medians[0],
    unit: 'ms',
    baseline: 'sh redirect to a file',
    baselineValue: medians[1],
  });
  measure({
    name: `a step writing ${gib} GiB to its log, worker RSS growth`,
    value: Math.max(...reports.map((r) => r.peakRssMiB - r.rssBeforeMiB)),
    unit: 'MiB',
    goal: { atMost: 64 },
  });
}
