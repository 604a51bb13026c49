// pnpm bench: figures as ratios against a named baseline measured in the same run.
//   1. staging a 10,000-file tree: stageJob vs `cp -a` and vs fs.promises.cp
//   2. finding and copying back the 1% a build changed: snapshot/diff/sync vs `cp -a` of the workspace
//   3. a step writing 1 GiB: time vs the same command redirected by the shell, and worker RSS growth
// Each contender runs BENCH_ROUNDS times, taking turns with the others, after a `sync` and
// with the previous copy removed, so none pays for another's writeback; medians are reported.
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
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const root = await mkdtemp(path.join(os.tmpdir(), 'jw-bench-'));
const at = (name) => path.join(root, name);
const gone = (name) => () => rm(at(name), { recursive: true, force: true });
const rows = [];

async function compare(contenders) {
  const times = contenders.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of contenders.entries()) {
      execFileSync('sync');
      const t = performance.now();
      await c.run();
      times[i].push(performance.now() - t);
      await c.reset?.();
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

function row(what, ours, baseline, name) {
  rows.push({
    what,
    'jw ms': ours.toFixed(0),
    'baseline ms': baseline.toFixed(0),
    baseline: name,
    ratio: `${(ours / baseline).toFixed(2)}×`,
  });
}

try {
  const job = at('job');
  for (let d = 0; d < 100; d++) {
    await mkdir(path.join(job, `dir${d}`), { recursive: true });
    await Promise.all(
      Array.from({ length: FILES / 100 }, (_, f) =>
        writeFile(path.join(job, `dir${d}`, `file${f}.txt`), `content ${d}/${f}\n`.repeat(20)),
      ),
    );
  }

  const [stage, cpA, fsCp] = await compare([
    { run: async () => stageJob(job, await createWorkspace(at('ws'), 'bench')), reset: gone('ws') },
    { run: async () => execFileSync('cp', ['-a', job, at('cp-a')]), reset: gone('cp-a') },
    {
      run: () => cp(job, at('fs-cp'), { recursive: true, preserveTimestamps: true }),
      reset: gone('fs-cp'),
    },
  ]);
  row(`stage ${FILES} files`, stage, cpA, 'cp -a');
  row(`stage ${FILES} files`, stage, fsCp, 'fs.promises.cp');

  const ws = await createWorkspace(at('ws'), 'bench');
  await stageJob(job, ws);
  const before = await takeSnapshot(ws);
  const changed = FILES / 100;
  for (let i = 0; i < changed; i++) {
    await writeFile(path.join(ws, `dir${i % 100}`, `file${i}.txt`), `changed ${i}\n`);
  }
  await mkdir(path.join(ws, 'dist'));
  await writeFile(path.join(ws, 'dist', 'app.js'), 'x'.repeat(1 << 20));
  const [sync, cpBack] = await compare([
    {
      run: async () => {
        await mkdir(at('results'), { recursive: true });
        const changes = await diffSnapshots(before, await takeSnapshot(ws), {
          workspace: ws,
          source: job,
        });
        const synced = await syncArtifacts(ws, at('results'), changes);
        if (synced.length !== changed + 1) throw new Error(`synced ${synced.length}`);
      },
      reset: gone('results'),
    },
    { run: async () => execFileSync('cp', ['-a', ws, at('cp-back')]), reset: gone('cp-back') },
  ]);
  row(
    `find + copy back ${changed + 1} changed of ${FILES}`,
    sync,
    cpBack,
    'cp -a of the workspace',
  );

  let grew = 0;
  const [flood, shell] = await compare([
    {
      run: async () => {
        const rss0 = process.memoryUsage().rss;
        const log = await StepLog.create(root, 0);
        const step = {
          index: 0,
          name: 'flood',
          run: `head -c ${FLOOD} /dev/zero`,
          env: {},
          continueOnError: false,
        };
        await runStep(step, {
          workspace: root,
          env: { PATH: process.env.PATH },
          log,
          signal: new AbortController().signal,
          killGraceMs: 1000,
        });
        await log.close();
        grew = Math.max(grew, (process.memoryUsage().rss - rss0) / 1024 / 1024);
      },
      reset: gone('step_0.log'),
    },
    {
      run: async () =>
        spawnSync('/bin/sh', ['-c', `head -c ${FLOOD} /dev/zero > ${at('shell.log')}`]),
      reset: gone('shell.log'),
    },
  ]);
  row(
    `step writing ${(FLOOD / 1024 ** 3).toFixed(2)} GiB to its log (worker RSS +${grew.toFixed(1)} MiB)`,
    flood,
    shell,
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
