import {
  mkdir,
  readdir,
  readFile,
  readlink,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canChattr, immutable } from '../test/immutable.js';
import { claimJob, findStaleJobs } from './claim.js';
import type { JobEvent } from './events.js';
import { silentLogger } from './logger.js';
import { parseRequest } from './request.js';
import { removeStaleTemps } from './results-dir.js';
import { type RunJobOptions, runJob } from './run-job.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

function options(extra: Partial<RunJobOptions> = {}): RunJobOptions {
  return {
    jobsDir: box.jobsDir,
    workspacesDir: box.workspacesDir,
    worker: { id: 'w1', hostname: 'h', pid: process.pid, transport: 'test', version: '1.0.0' },
    leaseMs: 10_000,
    killGraceMs: 300,
    env: { PATH: process.env.PATH ?? '' },
    logger: silentLogger,
    ...extra,
  };
}

/** Runs a job and delivers its result, as the worker does. */
async function run(body: Record<string, unknown>, extra?: Partial<RunJobOptions>) {
  const outcome = await runJob(parseRequest(body), options(extra));
  if (outcome.kind === 'finished') {
    await outcome.delivered?.();
    await outcome.settled?.();
  }
  return outcome;
}

describe('runJob', () => {
  it('runs the steps, streams logs, syncs changed files and writes the manifest', async () => {
    await box.makeJob(
      'ok',
      {
        steps: [
          'echo hi; echo warn >&2',
          { name: 'build', run: 'mkdir -p dist; cp in.txt dist/out.txt; echo changed > edit.txt' },
        ],
      },
      { 'in.txt': 'input', 'edit.txt': 'orig' },
    );
    const events: JobEvent[] = [];
    const outcome = await run({ id: 'ok' }, { onEvent: (e) => events.push(e) });
    expect(outcome.kind).toBe('finished');
    if (outcome.kind !== 'finished') return;
    expect(outcome.result).toMatchObject({
      id: 'ok',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
      workerId: 'w1',
      attempt: 1,
    });
    const m = await box.readResult('ok');
    expect(m).toMatchObject({
      schemaVersion: 1,
      jobId: 'ok',
      status: 'success',
      exitCode: 0,
      attempt: 1,
      worker: { id: 'w1', transport: 'test', version: '1.0.0' },
    });
    expect(m.timing.durationMs).toBeGreaterThanOrEqual(0);
    expect(m.steps).toMatchObject([
      {
        index: 0,
        name: 'echo hi; echo warn >&2',
        status: 'success',
        exitCode: 0,
        signal: null,
        log: 'step_0.log',
      },
      { index: 1, name: 'build', status: 'success', log: 'step_1.log' },
    ]);
    expect(m.artifacts.map((a: { path: string; change: string }) => [a.path, a.change])).toEqual([
      ['dist/out.txt', 'added'],
      ['edit.txt', 'modified'],
    ]);
    expect(await box.readLog('ok', 0)).toBe('hi\nwarn\n');
    const resultsDir = path.join(box.jobsDir, 'ok', 'results');
    expect((await readdir(resultsDir)).sort()).toEqual([
      'dist',
      'edit.txt',
      'result.json',
      'step_0.log',
      'step_1.log',
    ]);
    expect(events.map((e) => e.state)).toEqual([
      'claimed',
      'staging',
      'running',
      'running',
      'syncing',
      'success',
    ]);
    expect(events[2]?.step).toMatchObject({
      index: 0,
      logFile: path.join(resultsDir, 'step_0.log'),
    });
    expect(await readdir(box.workspacesDir)).toEqual([]);
    expect(await readFile(path.join(box.jobsDir, 'ok', 'edit.txt'), 'utf8')).toBe('orig');
  });

  it('shows the job as running in result.json while a step runs', async () => {
    await box.makeJob('live', { steps: ['sleep 0.3'] });
    let seen: Record<string, unknown> | undefined;
    await run(
      { id: 'live' },
      {
        onEvent: (e) => {
          if (e.state === 'running')
            seen = JSON.parse(
              require('node:fs').readFileSync(
                path.join(box.jobsDir, 'live/results/result.json'),
                'utf8',
              ),
            );
        },
      },
    );
    expect(seen).toMatchObject({ status: 'running', steps: [{ index: 0, status: 'running' }] });
  });

  it('ends at the first failing step, still syncs, and keeps going past continueOnError', async () => {
    await box.makeJob('bad', {
      steps: [
        'echo a > made.txt',
        { run: 'exit 7', continueOnError: true },
        'exit 5',
        'echo never > never.txt',
      ],
    });
    const outcome = await run({ id: 'bad' });
    if (outcome.kind !== 'finished') throw new Error(outcome.kind);
    expect(outcome.result).toMatchObject({
      status: 'failed',
      exitCode: 5,
      errorCode: 'STEP_FAILED',
    });
    const m = await box.readResult('bad');
    expect(m.steps.map((s: { status: string }) => s.status)).toEqual([
      'success',
      'failed',
      'failed',
    ]);
    expect(m.artifacts.map((a: { path: string }) => a.path)).toEqual(['made.txt']);
    expect(m.error).toMatch(/step 2/);
  });

  it('times out a step and a job, killing the process group', async () => {
    await box.makeJob('slow', { steps: [{ run: 'sleep 10', timeoutSeconds: 0.2 }] });
    const a = await run({ id: 'slow' });
    expect(a.kind === 'finished' && a.result).toMatchObject({
      status: 'timeout',
      errorCode: 'TIMEOUT',
    });
    expect(a.kind === 'finished' && a.result.exitCode).not.toBe(0);
    await box.makeJob('slowjob', { steps: ['sleep 10'], timeoutSeconds: 0.2 });
    const b = await run({ id: 'slowjob' });
    expect(b.kind === 'finished' && b.result).toMatchObject({
      status: 'timeout',
      errorCode: 'TIMEOUT',
    });
    const c = await run({ id: 'j3', steps: ['sleep 10'] }, { defaultTimeoutMs: 200 });
    expect(c.kind === 'finished' && c.result.status).toBe('timeout');
  });

  it('cancels a running job', async () => {
    await box.makeJob('c', { steps: ['sleep 10'] });
    const controller = new AbortController();
    const pending = run(
      { id: 'c' },
      {
        signal: controller.signal,
        onEvent: (e) => e.state === 'running' && controller.abort('cancel'),
      },
    );
    const outcome = await pending;
    expect(outcome.kind === 'finished' && outcome.result).toMatchObject({
      status: 'cancelled',
      errorCode: 'CANCELLED',
    });
    expect((await box.readResult('c')).steps[0]).toMatchObject({
      status: 'cancelled',
      signal: 'SIGTERM',
    });
  });

  it('gives a job back on shutdown: not final, claim expired, runs again on redelivery', async () => {
    await box.makeJob('s', { steps: ['sleep 10'] });
    const controller = new AbortController();
    const outcome = await run(
      { id: 's' },
      {
        signal: controller.signal,
        onEvent: (e) => e.state === 'running' && controller.abort('shutdown'),
      },
    );
    expect(outcome.kind).toBe('requeued');
    expect((await box.readResult('s')).status).toBe('requeued');
    expect(await findStaleJobs(box.jobsDir)).toEqual(['s']);
    await writeFile(path.join(box.jobsDir, 's/job.json'), JSON.stringify({ steps: ['true'] }));
    const again = await run({ id: 's' });
    expect(again.kind === 'finished' && again.result).toMatchObject({
      status: 'success',
      attempt: 2,
    });
  });

  it('runs a given-back job whose steps came in the request from a bare {id}', async () => {
    const controller = new AbortController();
    const first = await run(
      { id: 'inline', steps: ['sleep 10'] },
      {
        signal: controller.signal,
        onEvent: (e) => e.state === 'running' && controller.abort('shutdown'),
      },
    );
    expect(first.kind).toBe('requeued');
    const again = await run({ id: 'inline' }, { defaultTimeoutMs: 300 });
    expect(again.kind === 'finished' && again.result).toMatchObject({
      status: 'timeout',
      attempt: 2,
    });
    expect((await box.readResult('inline')).steps[0].command).toBe('sleep 10');
  });

  it.each([
    ['missing', undefined, /job.json is missing/],
    ['not JSON', '{nope', /not JSON/],
    ['of the wrong shape', { steps: 'echo' }, /not a valid job/],
    ['without steps', { env: {} }, /no steps/],
    ['using an unknown handler', { steps: [{ uses: 'nope' }] }, /unknown handler/],
  ])(
    'ends a job whose job.json is %s as error BAD_JOB with a manifest',
    async (_name, job, message) => {
      await box.makeJob('bj', job, { 'other.txt': 'x' });
      const outcome = await run({ id: 'bj' });
      expect(outcome.kind === 'finished' && outcome.result).toMatchObject({
        status: 'error',
        exitCode: 1,
        errorCode: 'BAD_JOB',
      });
      const m = await box.readResult('bj');
      expect(m).toMatchObject({ status: 'error', errorCode: 'BAD_JOB' });
      expect(m.error).toMatch(message);
    },
  );

  it('runs a job dir with links out of it, copied as links; syncs back none of their targets', async () => {
    const dir = await box.makeJob('sl', {
      steps: ['readlink escape > target.txt; test -L escape; ln -s /etc made-link'],
    });
    await writeFile(path.join(box.root, 'secret'), 'secret');
    await symlink(path.join(box.root, 'secret'), path.join(dir, 'escape'));
    const outcome = await run({ id: 'sl' });
    expect(outcome.kind === 'finished' && outcome.result.status).toBe('success');
    const results = path.join(dir, 'results');
    expect(await readFile(path.join(results, 'target.txt'), 'utf8')).toBe(
      `${path.join(box.root, 'secret')}\n`,
    );
    expect(await readlink(path.join(results, 'made-link'))).toBe('/etc');
    expect((await readdir(results)).sort()).toEqual([
      'made-link',
      'result.json',
      'step_0.log',
      'target.txt',
    ]);
  });

  it('refuses a results/ that is a link: a result message only, nothing written through it', async () => {
    const elsewhere = path.join(box.root, 'elsewhere');
    await mkdir(elsewhere);
    const dir = await box.makeJob('rl', { steps: ['echo x > art.txt'] });
    await symlink(elsewhere, path.join(dir, 'results'));
    const outcome = await run({ id: 'rl' });
    expect(outcome.kind === 'finished' && outcome.result).toMatchObject({
      status: 'error',
      errorCode: 'BAD_JOB',
      manifestFile: null,
      error: expect.stringMatching(/results is a symlink/),
    });
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('ends a job BAD_JOB when a link appears where an artifact dir goes', async () => {
    const elsewhere = path.join(box.root, 'elsewhere');
    await mkdir(elsewhere);
    await box.makeJob('dl', {
      steps: [`ln -s ${elsewhere} "$JW_RESULTS_DIR/dist"; mkdir dist; echo x > dist/app.js`],
    });
    const outcome = await run({ id: 'dl' });
    expect(outcome.kind === 'finished' && outcome.result).toMatchObject({
      status: 'error',
      errorCode: 'BAD_JOB',
      manifestFile: 'results/result.json',
    });
    expect((await box.readResult('dl')).error).toMatch(/results\/dist is a symlink/);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('refuses a job dir that is a file', async () => {
    await writeFile(path.join(box.jobsDir, 'file'), 'not a dir');
    const outcome = await run({ id: 'file' });
    expect(outcome.kind === 'finished' && outcome.result).toMatchObject({
      status: 'error',
      errorCode: 'BAD_JOB',
      manifestFile: null,
      error: 'job dir file is not a directory',
    });
  });

  it.skipIf(!canChattr)(
    'gives up on a results/ that cannot be written after its retries (RESULTS_UNWRITABLE)',
    async () => {
      const dir = await box.makeJob('ro', { steps: ['echo x'] });
      await mkdir(path.join(dir, 'results'));
      await immutable(path.join(dir, 'results'), async () => {
        const started = Date.now();
        const outcome = await run({ id: 'ro' }, { resultsRetries: 3, resultsBackoffMs: 100 });
        expect(outcome.kind).toBe('unwritable');
        expect(outcome.kind === 'unwritable' && outcome.error.code).toBe('RESULTS_UNWRITABLE');
        // Two waits: 100 ms, then 200 ms.
        expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      });
    },
  );

  it.skipIf(!canChattr)(
    'gives a job back when the workspaces dir cannot be written (a worker fault)',
    async () => {
      await box.makeJob('wsf', { steps: ['echo x'] });
      await immutable(box.workspacesDir, async () => {
        const outcome = await run({ id: 'wsf' });
        expect(outcome.kind === 'failed' && outcome.error.code).toBe('WORKSPACES_UNWRITABLE');
      });
      const m = await box.readResult('wsf');
      expect(m).toMatchObject({ status: 'requeued' });
      expect(m.error).toMatch(/workspaces dir .* cannot be written/);
      const again = await run({ id: 'wsf' });
      expect(again.kind === 'finished' && again.result).toMatchObject({
        status: 'success',
        attempt: 2,
      });
    },
  );

  it('creates a missing job dir for a request with steps, and refuses one without', async () => {
    const a = await run({ id: 'fresh', steps: ['echo made > made.txt'] });
    expect(a.kind === 'finished' && a.result.status).toBe('success');
    expect(await readFile(path.join(box.jobsDir, 'fresh/results/made.txt'), 'utf8')).toBe('made\n');
    const b = await run({ id: 'nothing' });
    expect(b.kind === 'finished' && b.result).toMatchObject({
      status: 'error',
      errorCode: 'BAD_JOB',
      manifestFile: null,
    });
    await expect(stat(path.join(box.jobsDir, 'nothing'))).rejects.toThrow();
  });

  it('runs a request with steps in a job dir it made as attempt 1 in an empty workspace, twice with force', async () => {
    const first = await run({ id: 'made', steps: ['echo "[$(ls -A)]" > listing.txt'] });
    expect(first.kind === 'finished' && first.result).toMatchObject({
      status: 'success',
      attempt: 1,
    });
    expect(await readFile(path.join(box.jobsDir, 'made/results/listing.txt'), 'utf8')).toBe('[]\n');
    // The job dir exists now: the second run stages it, counts on and replaces the step logs.
    await writeFile(path.join(box.jobsDir, 'made/input.txt'), 'in');
    const second = await run({
      id: 'made',
      force: true,
      steps: ['echo "[$(ls -A)]" > listing.txt'],
    });
    expect(second.kind === 'finished' && second.result).toMatchObject({
      status: 'success',
      attempt: 2,
    });
    expect(await readFile(path.join(box.jobsDir, 'made/results/listing.txt'), 'utf8')).toBe(
      '[input.txt]\n',
    );
    expect(await readdir(path.join(box.jobsDir, 'made/results'))).toEqual(
      expect.arrayContaining(['result.json', 'step_0.log', 'listing.txt']),
    );
  });

  it('replays a finished job, re-runs it with force, and replaces old step logs', async () => {
    await box.makeJob('r', { steps: ['echo first', 'echo second'] });
    await run({ id: 'r' });
    const again = await run({ id: 'r' });
    expect(again.kind === 'finished' && again.result).toMatchObject({
      status: 'success',
      replayed: true,
      attempt: 1,
    });
    await writeFile(path.join(box.jobsDir, 'r/job.json'), JSON.stringify({ steps: ['echo only'] }));
    const forced = await run({ id: 'r', force: true });
    expect(forced.kind === 'finished' && forced.result).toMatchObject({
      status: 'success',
      attempt: 2,
    });
    expect(forced.kind === 'finished' && forced.result.replayed).toBeUndefined();
    expect(
      (await readdir(path.join(box.jobsDir, 'r/results'))).filter((n) => n.endsWith('.log')),
    ).toEqual(['step_0.log']);
    expect(await box.readLog('r', 0)).toBe('only\n');
  });

  it('gives back a job another worker holds', async () => {
    const dir = await box.makeJob('held', { steps: ['true'] }, { 'results/.keep': '' });
    const other = await claimJob(dir, { workerId: 'other', leaseMs: 5000 });
    expect(other.kind).toBe('claimed');
    const outcome = await run({ id: 'held' });
    expect(outcome.kind).toBe('busy');
    if (outcome.kind === 'busy') expect(outcome.retryInMs).toBeGreaterThan(4000);
  });

  it("keeps the worker's secrets from steps and sets the JW_ variables", async () => {
    await box.makeJob('env', { steps: ['env | sort > env.txt'], env: { FROM_JOB: 'job' } });
    await run(
      { id: 'env', env: { FROM_REQUEST: 'req' } },
      {
        env: {
          PATH: process.env.PATH ?? '',
          MQTT_PASSWORD: 'p',
          NATS_TOKEN: 't',
          API_SECRET: 's',
          SSH_KEY: 'k',
          MQTT_USERNAME: 'u',
          PLAIN: 'ok',
        },
        secretEnv: ['MQTT_USERNAME'],
      },
    );
    const env = await readFile(path.join(box.jobsDir, 'env/results/env.txt'), 'utf8');
    for (const secret of ['MQTT_PASSWORD', 'NATS_TOKEN', 'API_SECRET', 'SSH_KEY', 'MQTT_USERNAME'])
      expect(env).not.toContain(`${secret}=`);
    expect(env).toContain('PLAIN=ok');
    expect(env).toContain('FROM_JOB=job');
    expect(env).toContain('FROM_REQUEST=req');
    expect(env).toContain('JW_JOB_ID=env');
    expect(env).toContain('JW_STEP_INDEX=0');
    expect(env).toMatch(/JW_WORKSPACE=.*env-/);
    expect(env).toContain(`JW_RESULTS_DIR=${path.join(box.jobsDir, 'env', 'results')}`);
  });
  it('claims before anything runs and keeps the claim until the result is delivered', async () => {
    const dir = await box.makeJob('durable', { steps: ['echo ran > ran.txt'] });
    const claimFile = path.join(dir, 'results', '.claim');
    let claimedSeen = false;
    const outcome = await runJob(
      parseRequest({ id: 'durable' }),
      options({
        onClaimed: async () => {
          // Nothing has run yet, and the claim is on the drive.
          await expect(stat(claimFile)).resolves.toBeTruthy();
          await expect(stat(path.join(dir, 'results', 'ran.txt'))).rejects.toThrow();
          claimedSeen = true;
        },
      }),
    );
    expect(claimedSeen).toBe(true);
    if (outcome.kind !== 'finished') throw new Error(outcome.kind);
    expect(outcome.result.status).toBe('success');
    // Killed now, a recovery would find the job and send its result again.
    await expect(stat(claimFile)).resolves.toBeTruthy();
    expect(await findStaleJobs(box.jobsDir)).toEqual([]);
    await outcome.delivered?.();
    await expect(stat(claimFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('hands over the result before the workspace is removed, and removes it once the delivery settles', async () => {
    await box.makeJob('tidy', { steps: ['echo made > made.txt'] });
    const outcome = await runJob(parseRequest({ id: 'tidy' }), options());
    if (outcome.kind !== 'finished') throw new Error(outcome.kind);
    expect(outcome.result.status).toBe('success');
    const left = (await readdir(box.workspacesDir)).filter((n) => !n.startsWith('.'));
    expect(left).toHaveLength(1);
    expect(await readFile(path.join(box.workspacesDir, left[0]!, 'made.txt'), 'utf8')).toBe(
      'made\n',
    );
    await outcome.delivered?.();
    await outcome.settled?.();
    expect(await readdir(box.workspacesDir)).toEqual([]);
  });

  it('replays a finished job whose worker died before sending the result, then clears its claim', async () => {
    const dir = await box.makeJob('unsent', { steps: ['true'] });
    const first = await runJob(parseRequest({ id: 'unsent' }), options({ leaseMs: 60_000 }));
    if (first.kind !== 'finished') throw new Error(first.kind);
    // The worker "dies": its claim is left beside the final result and its lease runs out.
    const claimFile = path.join(dir, 'results', '.claim');
    const record = JSON.parse(await readFile(claimFile, 'utf8'));
    await writeFile(claimFile, JSON.stringify({ ...record, expiresAt: new Date(0).toISOString() }));
    expect(await findStaleJobs(box.jobsDir)).toEqual(['unsent']);
    const again = await runJob(parseRequest({ id: 'unsent' }), options());
    if (again.kind !== 'finished') throw new Error(again.kind);
    expect(again.result).toMatchObject({ status: 'success', replayed: true });
    await again.delivered?.();
    await expect(stat(claimFile)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await findStaleJobs(box.jobsDir)).toEqual([]);
  });

  it('replays a finished job whose holder was killed mid-write, and removes its fresh temp', async () => {
    const dir = await box.makeJob('midwrite', { steps: ['true'] });
    const first = await runJob(parseRequest({ id: 'midwrite' }), options({ leaseMs: 60_000 }));
    if (first.kind !== 'finished') throw new Error(first.kind);
    // Killed a moment ago while writing a file of its own: a temp younger than any fixed
    // age, beside its claim (whose process, gone, ends the lease).
    const temp = path.join(dir, 'results', '.jw-00aa11bb22cc.tmp');
    await writeFile(temp, '{"half');
    const claimFile = path.join(dir, 'results', '.claim');
    const record = JSON.parse(await readFile(claimFile, 'utf8'));
    await writeFile(claimFile, JSON.stringify({ ...record, expiresAt: new Date(0).toISOString() }));
    const again = await runJob(parseRequest({ id: 'midwrite' }), options());
    if (again.kind !== 'finished') throw new Error(again.kind);
    expect(again.result).toMatchObject({ status: 'success', replayed: true });
    await again.delivered?.();
    await expect(stat(temp)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(claimFile)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(
      JSON.parse(await readFile(path.join(dir, 'results', 'result.json'), 'utf8')).status,
    ).toBe('success');
  });

  it('runs a recovered job under the claim the transport took for it', async () => {
    const dir = await box.makeJob(
      'pre',
      { steps: ['echo $JW_ATTEMPT > attempt.txt'] },
      { 'results/.keep': '' },
    );
    const pre = await claimJob(dir, { workerId: 'w1', leaseMs: 10_000 });
    if (pre.kind !== 'claimed') throw new Error(pre.kind);
    pre.claim.keepAlive(() => {});
    const outcome = await run({ id: 'pre' }, { claim: pre });
    expect(outcome.kind === 'finished' && outcome.result.status).toBe('success');
    expect(await readFile(path.join(dir, 'results/attempt.txt'), 'utf8')).toBe('1\n');
    await expect(stat(path.join(dir, 'results/.claim'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
  it('removes the temp files a killed attempt left in results/ when it takes the job over', async () => {
    const dir = await box.makeJob('litter', { steps: ['true'] }, { 'results/sub/.keep': '' });
    const old = new Date(Date.now() - 120_000);
    const temps = [
      '.jw-0123456789ab.tmp',
      '.result.json.a1b2c3.tmp',
      'sub/art.txt.0a1b2c3d.jw-tmp',
    ];
    for (const t of temps) {
      await writeFile(path.join(dir, 'results', t), 'half');
      await utimes(path.join(dir, 'results', t), old, old);
    }
    // Fresh, from a worker killed just before the takeover: too young to judge at takeover,
    // older than the new claim when the job ends.
    await writeFile(path.join(dir, 'results', '.jw-fedcba987654.tmp'), 'killed a moment ago');
    expect(await removeStaleTemps(path.join(dir, 'results'))).toBe(3);
    temps.length = 0;
    temps.push('.jw-fedcba987654.tmp');
    const dead = await claimJob(dir, { workerId: 'dead', leaseMs: 60_000 });
    if (dead.kind !== 'claimed') throw new Error(dead.kind);
    const claimFile = path.join(dir, 'results', '.claim');
    const record = JSON.parse(await readFile(claimFile, 'utf8'));
    await writeFile(claimFile, JSON.stringify({ ...record, expiresAt: new Date(0).toISOString() }));
    const outcome = await run({ id: 'litter' });
    expect(outcome.kind === 'finished' && outcome.result.status).toBe('success');
    const left = await readdir(path.join(dir, 'results'), { recursive: true });
    for (const t of temps) expect(left).not.toContain(t);
    expect(left.filter((n) => n.endsWith('tmp'))).toEqual([]);
  });
});
