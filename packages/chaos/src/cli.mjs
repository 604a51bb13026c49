#!/usr/bin/env node
// pnpm chaos: N jobs through 4 supervised workers per transport while workers are
// SIGKILLed and brokers restarted, then a table of what went wrong.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS, runTransport } from './run.mjs';
import { failures, formatTable } from './table.mjs';
import { BINARIES, TRANSPORTS } from './transports.mjs';

const HELP = `Usage: pnpm chaos [--jobs N] [--transport file,nats,http,mqtt] [--quick] [--json out.json]

Runs N jobs (default ${DEFAULTS.jobs}) through ${DEFAULTS.workers} supervised daemon workers per
transport, SIGKILLs a random worker every 2-5 s and restarts the broker twice,
then reports lost jobs, overlapping runs, re-runs, duplicate and missing result
messages, recovery time after a kill, leftovers and steps that outlived their
worker. Drives the built binaries: run \`pnpm build\` first.

  --jobs N            jobs per transport (default ${DEFAULTS.jobs}; --quick: 40)
  --transport LIST    comma-separated subset of ${TRANSPORTS.join(',')}
  --quick             40 jobs, 1 broker restart
  --workers N         workers per transport (default ${DEFAULTS.workers})
  --restarts N        broker restarts per run (default ${DEFAULTS.brokerRestarts})
  --lease S           pass --lease S to every worker (default: the workers' own)
  --drain S           wait this long for the rest after the faults (default ${DEFAULTS.drainMs / 1000})
  --seed N            seed of the random choices (default ${DEFAULTS.seed})
  --json FILE         also write the full report (with details) as JSON
  --keep              keep the run dirs (worker logs, ledger, jobs) under $TMPDIR
  --strict            exit 1 when a transport misses a target of issue 12
`;

const { values } = parseArgs({
  options: {
    jobs: { type: 'string' },
    transport: { type: 'string' },
    quick: { type: 'boolean', default: false },
    workers: { type: 'string' },
    restarts: { type: 'string' },
    lease: { type: 'string' },
    drain: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const int = (v, name) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`bad --${name} ${v}\n`);
    process.exit(2);
  }
  return n;
};

const transports = (values.transport ?? TRANSPORTS.join(','))
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);
for (const t of transports) {
  if (!TRANSPORTS.includes(t)) {
    process.stderr.write(`unknown transport ${t} (one of ${TRANSPORTS.join(', ')})\n`);
    process.exit(2);
  }
}
for (const [what, file] of Object.entries(BINARIES)) {
  if (!existsSync(file)) {
    process.stderr.write(`${what}: ${file} is missing; run pnpm build first\n`);
    process.exit(2);
  }
}

const options = {
  jobs: values.jobs !== undefined ? int(values.jobs, 'jobs') : values.quick ? 40 : DEFAULTS.jobs,
  brokerRestarts:
    values.restarts !== undefined
      ? int(values.restarts, 'restarts')
      : values.quick
        ? 1
        : DEFAULTS.brokerRestarts,
  ...(values.workers !== undefined ? { workers: int(values.workers, 'workers') } : {}),
  ...(values.lease !== undefined ? { lease: int(values.lease, 'lease') } : {}),
  ...(values.drain !== undefined ? { drainMs: int(values.drain, 'drain') * 1000 } : {}),
  ...(values.seed !== undefined ? { seed: int(values.seed, 'seed') } : {}),
  keep: values.keep,
  log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
};

// Ctrl-C: the workers and brokers go with the harness (see `children`).
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

const reports = [];
for (const t of transports) {
  const report = await runTransport(t, options);
  reports.push(report);
  if (report.error)
    process.stderr.write(`${t}: ${report.error}\n(run dir kept: ${report.runDir})\n`);
  else if (values.keep) process.stderr.write(`${t}: run dir ${report.runDir}\n`);
}

process.stdout.write(`\n${formatTable(reports)}\n\n`);
let failed = false;
for (const r of reports) {
  const f = failures(r);
  if (f.length > 0) failed = true;
  process.stdout.write(`${r.transport}: ${f.length === 0 ? 'meets every target' : f.join('; ')}\n`);
  if (r.workerExitsNotKilled > 0)
    process.stdout.write(
      `${r.transport}: ${r.workerExitsNotKilled} worker exits that were not kills (${[...new Set(r.details.workerExits.map((e) => e.exit))].join(', ')})\n`,
    );
}
if (values.json) {
  // `pnpm chaos` runs in packages/chaos; a relative path means the caller's dir.
  const out = path.resolve(process.env.INIT_CWD ?? process.cwd(), values.json);
  await writeFile(
    out,
    `${JSON.stringify({ at: new Date().toISOString(), options: { ...options, log: undefined }, reports }, null, 2)}\n`,
  );
}
process.exit(values.strict && failed ? 1 : 0);
