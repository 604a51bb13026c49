// One chaos run of one transport: set up, submit, inject faults, drain, stop, count.
import { once } from 'node:events';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { analyse, parseLedger } from './analyse.mjs';
import { scanLeftovers } from './leftovers.mjs';
import { markedProcesses, watchSurvivors } from './procs.mjs';
import { sleep } from './services.mjs';
import { Supervisor } from './supervisor.mjs';
import { failures } from './table.mjs';
import { createAdapter } from './transports.mjs';

/**
 * @typedef {object} ChaosOptions
 * @property {number} jobs
 * @property {number} workers
 * @property {number} brokerRestarts
 * @property {number} maxKills Infinity: keep killing until every job finished
 * @property {[number, number]} killEveryMs
 * @property {'random' | 'busy'} killTarget busy: a worker whose step is running
 * @property {[number, number]} stepSeconds
 * @property {[number, number]} brokerDownMs
 * @property {number} faultMs how long faults go on at most
 * @property {number} drainMs how long to wait for the rest once faults stop
 * @property {number} settleMs quiet time for late duplicates before the workers stop
 * @property {number | undefined} lease --lease for every worker (seconds)
 * @property {number | undefined} staleAfter the HTTP backend's --stale-after (seconds)
 * @property {Record<string, string[]>} [workerArgs]
 * @property {number} seed
 * @property {boolean} keep keep the run dir
 * @property {string} [baseDir]
 * @property {(line: string) => void} [log]
 */

export const DEFAULTS = {
  jobs: 200,
  workers: 4,
  brokerRestarts: 2,
  maxKills: Number.POSITIVE_INFINITY,
  killEveryMs: [2_000, 5_000],
  killTarget: 'random',
  stepSeconds: [0.2, 1.5],
  brokerDownMs: [1_000, 3_000],
  faultMs: 300_000,
  drainMs: 180_000,
  settleMs: 3_000,
  lease: undefined,
  staleAfter: 10,
  seed: 1,
  keep: false,
};

/** A small seeded PRNG (mulberry32), so that a run's choices can be repeated. */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const between = (rand, [lo, hi]) => lo + rand() * (hi - lo);

/** The step: ledger lines at start and end (outside the workspace), a sleep, an artifact. */
const STEP = [
  'echo "start $JW_JOB_ID ${JW_ATTEMPT:-0} $CHAOS_WORKER $$ $(date +%s%N)" >> "$CHAOS_LEDGER"',
  'sleep "$CHAOS_SLEEP"',
  'echo "$JW_JOB_ID ${JW_ATTEMPT:-0} $CHAOS_WORKER" > artifact.txt',
  'echo "end $JW_JOB_ID ${JW_ATTEMPT:-0} $CHAOS_WORKER $$ $(date +%s%N)" >> "$CHAOS_LEDGER"',
].join('; ');

class LedgerReader {
  constructor(file) {
    this.file = file;
    this.offset = 0;
    this.text = '';
  }

  async read() {
    const fh = await open(this.file, 'r').catch(() => undefined);
    if (!fh) return parseLedger(this.text);
    try {
      const { size } = await fh.stat();
      if (size > this.offset) {
        const buf = Buffer.alloc(size - this.offset);
        await fh.read(buf, 0, buf.length, this.offset);
        // Only whole lines: a step may be half-way through its echo.
        const upTo = buf.lastIndexOf(10) + 1;
        this.text += buf.subarray(0, upTo).toString();
        this.offset += upTo;
      }
    } finally {
      await fh.close();
    }
    return parseLedger(this.text);
  }
}

/** Runs one transport through the faults and returns its report. */
export async function runTransport(name, options) {
  const o = { ...DEFAULTS, ...options };
  const log = o.log ?? (() => {});
  const rand = random(o.seed + name.length * 7919);
  const root = await mkdtemp(path.join(o.baseDir ?? os.tmpdir(), `jw-chaos-${name}-`));
  const logDir = path.join(root, 'logs');
  await mkdir(logDir);
  const ledgerFile = path.join(root, 'ledger.log');
  await writeFile(ledgerFile, '');
  const adapter = await createAdapter(name, root, o);
  const prefix = `${path.basename(root)}.w`;
  const supervisor = new Supervisor({
    count: o.workers,
    prefix,
    logDir,
    ready: adapter.ready,
    spec: adapter.worker,
  });
  const ids = Array.from(
    { length: o.jobs },
    (_, i) => `chaos-${name}-${String(i + 1).padStart(4, '0')}`,
  );
  for (const id of ids) {
    const dir = path.join(adapter.jobsDir, id);
    await mkdir(dir, { recursive: true });
    const job = {
      steps: [{ name: 'chaos-step', run: STEP }],
      env: { CHAOS_LEDGER: ledgerFile, CHAOS_SLEEP: between(rand, o.stepSeconds).toFixed(2) },
    };
    await writeFile(path.join(dir, 'job.json'), JSON.stringify(job));
  }

  const ledger = new LedgerReader(ledgerFile);
  /** @type {{ incarnation: string, pid: number, at: number, slot: number, claims: string[], survivors?: Promise<{lastSeen: number | undefined, pids: number[]}> }[]} */
  const kills = [];
  /** @type {{ at: number, upAt: number }[]} */
  const brokerRestarts = [];
  const t0 = Date.now();
  let faultsEnd = 0;
  let drainEnd = 0;
  let error;
  try {
    await adapter.start();
    await supervisor.start();
    await adapter.afterWorkersReady();
    log(`${name}: ${o.workers} workers ready in ${Date.now() - t0} ms; submitting ${o.jobs} jobs`);
    const submitted = Date.now();
    await adapter.submit(ids);

    // Faults: kills every few seconds, broker restarts at thirds of the run.
    const allDone = () => adapter.results.finished >= o.jobs;
    let nextKill;
    const faultDeadline = submitted + o.faultMs;
    let restartsDone = 0;
    while (Date.now() < faultDeadline) {
      if (allDone() && restartsDone >= (adapter.broker ? o.brokerRestarts : 0)) break;
      const now = Date.now();
      const runs = await ledger.read();
      if (nextKill === undefined && runs.starts.length > 0)
        nextKill = now + between(rand, o.killEveryMs);
      if (nextKill !== undefined && now >= nextKill && kills.length < o.maxKills && !allDone()) {
        const kill = await killOne(supervisor, adapter, ids, runs, o.killTarget, rand);
        if (kill) {
          kills.push(kill);
          log(
            `${name}: kill -9 ${kill.incarnation} (pid ${kill.pid}), holding ${kill.claims.join(', ') || 'nothing'}`,
          );
          nextKill = Date.now() + between(rand, o.killEveryMs);
        } else {
          nextKill = Date.now() + 200;
        }
      }
      if (adapter.broker && restartsDone < o.brokerRestarts) {
        const i = restartsDone + 1;
        const byProgress = adapter.results.finished >= (i * o.jobs) / (o.brokerRestarts + 1);
        const byTime = now - submitted >= i * 20_000;
        if (byProgress || byTime || allDone()) {
          const at = Date.now();
          const down = between(rand, o.brokerDownMs);
          log(`${name}: restarting the broker (down ${Math.round(down)} ms)`);
          await adapter.broker.restart(down);
          await adapter.afterBrokerRestart();
          brokerRestarts.push({ at, upAt: Date.now() });
          restartsDone++;
        }
      }
      await sleep(100);
    }
    faultsEnd = Date.now();
    log(
      `${name}: faults over after ${Math.round((faultsEnd - submitted) / 1000)} s; ${adapter.results.finished}/${o.jobs} finished; draining`,
    );
    const drainDeadline = Date.now() + o.drainMs;
    while (!allDone() && Date.now() < drainDeadline) await sleep(250);
    drainEnd = Date.now();
    log(
      `${name}: ${adapter.results.finished}/${o.jobs} finished after the drain (${Math.round((drainEnd - faultsEnd) / 1000)} s)`,
    );
    await sleep(o.settleMs);
  } catch (e) {
    error = e;
  }
  await supervisor.stop();
  // Anything of this run still alive 1 s after its worker stopped outlived it for good
  // (the same grace as after a kill): a watchdog's last sweep takes a moment to end.
  const stopped = Date.now();
  let orphans = await markedProcesses(prefix);
  while (orphans.size > 0 && Date.now() - stopped < 1000) {
    await sleep(100);
    orphans = await markedProcesses(prefix);
  }
  for (const pid of orphans.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const k of kills) k.survivorsResult = await k.survivors;
  const runs = await ledger.read();
  await adapter.close().catch(() => {});
  const leftovers = await scanLeftovers(adapter, ids);
  const report = {
    ...analyse({
      name,
      ids,
      runs,
      kills,
      supervisor,
      results: adapter.results,
      leftovers,
      brokerRestarts,
      orphans: orphans.size,
      timing: { startedAt: t0, faultsEnd, drainEnd, endedAt: Date.now() },
    }),
    runDir: root,
    error: error ? String(error?.stack ?? error) : undefined,
  };
  // A run that misses a target keeps its dir (worker logs, ledger, jobs) for a look.
  if (!o.keep && !error && failures(report).length === 0)
    await rm(root, { recursive: true, force: true });
  return report;
}

async function readClaims(jobsDir, ids) {
  const claims = new Map();
  await Promise.all(
    ids.map(async (id) => {
      try {
        const fh = await open(path.join(jobsDir, id, 'results', '.claim'), 'r');
        try {
          const claim = JSON.parse(await fh.readFile('utf8'));
          claims.set(id, claim);
        } finally {
          await fh.close();
        }
      } catch {}
    }),
  );
  return claims;
}

async function killOne(supervisor, adapter, ids, runs, target, rand) {
  let candidates = supervisor.slots.filter((s) => s.running && s.current.readyAt !== undefined);
  if (target === 'busy') {
    const busy = new Set(runs.starts.filter((r) => !runs.ended(r)).map((r) => r.incarnation));
    candidates = candidates.filter((s) => busy.has(s.current.name));
  }
  if (candidates.length === 0) return undefined;
  const slot = candidates[Math.floor(rand() * candidates.length)];
  const pid = slot.current.pid;
  // A claim names its pid: the jobs the worker holds, also those whose step has not started.
  const unfinished = ids.filter((id) => !adapter.results.has(id));
  const before = await readClaims(adapter.jobsDir, unfinished);
  const inc = supervisor.kill(slot);
  if (!inc) return undefined;
  // What a dead worker held stays claimed in its name until another takes it over, so
  // a second look right after its exit also finds a claim taken during the first.
  if (inc.exitedAt === undefined) await once(inc.child, 'exit');
  const after = await readClaims(adapter.jobsDir, unfinished);
  const claims = [
    ...new Set(
      [...before.entries(), ...after.entries()].filter(([, c]) => c.pid === pid).map(([id]) => id),
    ),
  ];
  return {
    incarnation: inc.name,
    pid,
    at: inc.killedAt,
    slot: slot.index,
    claims,
    survivors: watchSurvivors(inc.name, pid),
  };
}
