// pnpm bench: figures as ratios against a named baseline measured in the same run.
//   1. staging a 10,000-file tree: stageJob vs `cp -a` (and fs.promises.cp)
//   2. change detection + sync after a build touched 1% of it: snapshot/diff/sync vs `rsync -a`-free baseline `cp -a`
//   3. a step writing 1 GiB: worker RSS growth and time vs the same command redirected by the shell
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  createWorkspace,
  diffSnapshots,
  runStep,
  StepLog,
  stageJob,
  syncArtifacts,
  takeSnapshot,
} from '../dist/index.js';

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const FLOOD = Number(process.env.BENCH_FLOOD_BYTES ?? 1024 ** 3);
const root = await mkdtemp(path.join(os.tmpdir(), 'jw-bench-'));
const time = async (fn) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};
const rows = [];
const row = (what, ours, baseline, name) =>
  rows.push({
    what,
    'jw ms': ours.toFixed(0),
    'baseline ms': baseline.toFixed(0),
    baseline: name,
    ratio: `${(ours / baseline).toFixed(2)}×`,
  });

try {
  const job = path.join(root, 'job');
  for (let d = 0; d < 100; d++) {
    await mkdir(path.join(job, `dir${d}`), { recursive: true });
    await Promise.all(
      Array.from({ length: FILES / 100 }, (_, f) =>
        writeFile(path.join(job, `dir${d}`, `file${f}.txt`), `content ${d}/${f}\n`.repeat(20)),
      ),
    );
  }
  execFileSync('sync');

  const cpA = await time(async () => execFileSync('cp', ['-a', job, path.join(root, 'cp-a')]));
  const fsCp = await time(() =>
    cp(job, path.join(root, 'fs-cp'), { recursive: true, preserveTimestamps: true }),
  );
  let ws;
  const ours = await time(async () => {
    ws = await createWorkspace(path.join(root, 'ws'), 'bench');
    await stageJob(job, ws);
  });
  row(`stage ${FILES} files`, ours, cpA, 'cp -a');
  row(`stage ${FILES} files`, ours, fsCp, 'fs.promises.cp');

  const before = await takeSnapshot(ws);
  for (let i = 0; i < FILES / 100; i++)
    await writeFile(path.join(ws, `dir${i % 100}`, `file${i}.txt`), `changed ${i}\n`);
  await mkdir(path.join(ws, 'dist'));
  await writeFile(path.join(ws, 'dist', 'app.js'), 'x'.repeat(1 << 20));
  const results = path.join(root, 'results');
  await mkdir(results);
  const syncMs = await time(async () => {
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: job,
    });
    const synced = await syncArtifacts(ws, results, changes);
    if (synced.length !== FILES / 100 + 1) throw new Error(`synced ${synced.length}`);
  });
  const cpBack = await time(async () => execFileSync('cp', ['-a', ws, path.join(root, 'cp-back')]));
  row(
    `find + copy back ${FILES / 100 + 1} changed of ${FILES}`,
    syncMs,
    cpBack,
    'cp -a of the workspace',
  );

  const shellMs = await time(async () =>
    spawnSync('/bin/sh', ['-c', `head -c ${FLOOD} /dev/zero > ${path.join(root, 'shell.log')}`]),
  );
  const rss0 = process.memoryUsage().rss;
  const log = await StepLog.create(root, 0);
  const stepMs = await time(() =>
    runStep(
      {
        index: 0,
        name: 'flood',
        run: `head -c ${FLOOD} /dev/zero`,
        env: {},
        continueOnError: false,
      },
      {
        workspace: root,
        env: { PATH: process.env.PATH },
        log,
        signal: new AbortController().signal,
        killGraceMs: 1000,
      },
    ),
  );
  await log.close();
  const grew = (process.memoryUsage().rss - rss0) / 1024 / 1024;
  row(
    `step writing ${(FLOOD / 1024 ** 3).toFixed(2)} GiB to its log (RSS +${grew.toFixed(1)} MiB)`,
    stepMs,
    shellMs,
    'sh redirect to a file',
  );
  console.table(rows);
  if (grew > 64) {
    console.error(`worker memory grew by ${grew.toFixed(1)} MiB while a step wrote ${FLOOD} bytes`);
    process.exitCode = 1;
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
