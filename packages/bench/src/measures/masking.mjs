// What masking secrets costs a step's log: the same 1 GiB of output with one secret in
// it, through the worker's masker (the job has a secret-named env var) and straight to
// the log file (the same value under a name that is not secret).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { measure } from '../report.mjs';
import { compare, here, MiB, run, tempDir } from '../util.mjs';

const SECRET = 'bench-s3cr3t-value-0123456789';

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

export async function maskedLog(ctx) {
  const bytes = ctx.cfg.quick ? 256 * MiB : 1024 * MiB;
  const root = await tempDir('jw-bench-mask-');
  // Compiler-like lines; the secret once, early, so the rest is scanned for nothing.
  const step = `echo "token: $SECRET_VALUE"; yes "cc -O2 -c src/module.c -o build/module.o  # ok" | head -c ${bytes}`;
  for (const [id, name] of [
    ['masked', 'API_TOKEN'],
    ['plain', 'API_VALUE'],
  ]) {
    await mkdir(path.join(root, 'jobs', id), { recursive: true });
    await writeFile(
      path.join(root, 'jobs', id, 'job.json'),
      JSON.stringify({ steps: [step.replace('SECRET_VALUE', name)], env: { [name]: SECRET } }),
    );
  }
  const reports = { masked: [], plain: [] };
  const rounds = ctx.cfg.quick ? 1 : Math.min(ctx.cfg.rounds, 3);
  const { medians } = await compare(
    ['masked', 'plain'].map((id) => ({
      run: async () => {
        const r = await childJob(root, id);
        reports[id].push(r);
        return r.ms;
      },
    })),
    rounds,
    { sync: !ctx.cfg.quick },
  );
  // A measure of a masker that lets the secret through would be worthless.
  const head = (await readFile(path.join(root, 'jobs', 'masked', 'results', 'step_0.log')))
    .subarray(0, 4096)
    .toString();
  if (head.includes(SECRET) || !head.startsWith('token: ***'))
    throw new Error('the masked log shows the secret');
  const gib = (bytes / 1024 ** 3).toFixed(2);
  measure({
    name: `a step writing ${gib} GiB with one secret, masked, whole job`,
    value: medians[0],
    unit: 'ms',
    baseline: 'the same job with no secret (direct to the file)',
    baselineValue: medians[1],
    goal: { ratioAtMost: 1.5 },
  });
  measure({
    name: `a step writing ${gib} GiB with one secret, masked, worker RSS growth`,
    value: Math.max(...reports.masked.map((r) => r.peakRssMiB - r.rssBeforeMiB)),
    unit: 'MiB',
    goal: { atMost: 64 },
  });
}
