import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, exists, type Sandbox, waitFor } from '@jw/testing/fs';
import { pidAlive } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
beforeEach(async () => {
  box = await createSandbox('jw-file-worker-');
  q = queue(box);
});
afterEach(async () => {
  await killWorkers();
  await box.cleanup();
});

describe('file-worker binary', () => {
  it('runs a job end to end and exits 0 after --max-jobs', async () => {
    await box.makeJob(
      'hello',
      { steps: ['echo out; echo err >&2', 'mkdir -p dist && echo built > dist/app.txt'] },
      { 'src.txt': 'x' },
    );
    await q.drop('hello.json', { id: 'hello' });
    const w = startWorker(box, ['--max-jobs', '1']);
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await q.result('hello')).toMatchObject({
      id: 'hello',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
    });
    expect(await box.readLog('hello', 0)).toBe('out\nerr\n');
    expect(await readFile(path.join(box.jobsDir, 'hello/results/dist/app.txt'), 'utf8')).toBe(
      'built\n',
    );
    expect(await exists(path.join(box.jobsDir, 'hello/results/src.txt'))).toBe(false);
    const m = await box.readResult('hello');
    expect(m.worker).toMatchObject({ id: 'worker-01', transport: 'file' });
    expect(w.stderr).toContain('results in');
  });

  it('runs the example job of the Quick start', async () => {
    const { cp } = await import('node:fs/promises');
    const example = new URL('../../../examples/jobs/hello', import.meta.url);
    await cp(example, path.join(box.jobsDir, 'hello'), { recursive: true });
    await q.drop('hello.json', { id: 'hello' });
    expect((await startWorker(box, ['--max-jobs', '1']).exited).code).toBe(0);
    expect(await q.result('hello')).toMatchObject({ status: 'success', exitCode: 0 });
    const m = await box.readResult('hello');
    expect(m.artifacts.map((a: { path: string }) => a.path)).toEqual(['dist/report.txt']);
    expect(await readFile(path.join(box.jobsDir, 'hello/results/dist/report.txt'), 'utf8')).toBe(
      'hello, hello: 9 words\n',
    );
    expect(await box.readLog('hello', 1)).toBe('counted 9 words\nbuild.mjs: done\n');
  });

  it("keeps its own libuv tuning from steps, and passes on the user's own", async () => {
    await q.drop('pool.json', { id: 'pool', steps: ['echo "[$UV_THREADPOOL_SIZE]"'] });
    expect(
      (await startWorker(box, ['--max-jobs', '1'], { UV_THREADPOOL_SIZE: undefined }).exited).code,
    ).toBe(0);
    expect(await box.readLog('pool', 0)).toBe('[]\n');
    await q.drop('mine.json', { id: 'mine', steps: ['echo "[$UV_THREADPOOL_SIZE]"'] });
    expect(
      (await startWorker(box, ['--max-jobs', '1'], { UV_THREADPOOL_SIZE: '8' }).exited).code,
    ).toBe(0);
    expect(await box.readLog('mine', 0)).toBe('[8]\n');
  });

  it('handles a failing step as a handled job (exit 0), with the step code in the result', async () => {
    await box.makeJob('fails', { steps: ['echo before', 'exit 42', 'echo never'] });
    await q.drop('fails.json', { id: 'fails' });
    expect((await startWorker(box, ['--max-jobs', '1']).exited).code).toBe(0);
    expect(await q.result('fails')).toMatchObject({
      status: 'failed',
      exitCode: 42,
      errorCode: 'STEP_FAILED',
    });
  });

  it('enforces --timeout and kills the process group', async () => {
    const marker = path.join(box.root, 'grandchild-survived');
    const pidFile = path.join(box.root, 'grandchild.pid');
    await box.makeJob('slow', {
      steps: [`sh -c 'echo $$ > ${pidFile}; sleep 3; touch ${marker}' & wait`],
    });
    await q.drop('slow.json', { id: 'slow' });
    expect(
      (
        await startWorker(box, ['--max-jobs', '1', '--timeout', '500ms', '--kill-grace', '1'])
          .exited
      ).code,
    ).toBe(0);
    expect(await q.result('slow')).toMatchObject({ status: 'timeout', errorCode: 'TIMEOUT' });
    // The grandchild is gone, not merely not finished yet.
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    await waitFor(() => !pidAlive(grandchild), 5_000);
    expect(await exists(marker)).toBe(false);
  });

  it('cancels a job through cancel/{id}', async () => {
    await box.makeJob('c', { steps: ['sleep 20'] });
    await q.drop('c.json', { id: 'c' });
    const w = startWorker(box, ['--max-jobs', '1']);
    await waitFor(
      async () => (await box.readResult('c').catch(() => undefined))?.steps?.length === 1,
    );
    await writeFile(path.join(q.dir('cancel'), 'c'), '');
    expect((await w.exited).code).toBe(0);
    expect(await q.result('c')).toMatchObject({ status: 'cancelled', errorCode: 'CANCELLED' });
  });

  // A link out of the job dir no longer ends the job (SPEC 4, issue 13): see hostile.test.ts.
  it('ends a job with a bad job.json as BAD_JOB', async () => {
    await box.makeJob('badjson', '{ "steps": ');
    await q.drop('badjson.json', { id: 'badjson' });
    expect((await startWorker(box, ['--max-jobs', '1']).exited).code).toBe(0);
    expect(await q.result('badjson')).toMatchObject({ status: 'error', errorCode: 'BAD_JOB' });
    expect((await box.readResult('badjson')).error).toMatch(/not JSON/);
  });

  it.each([
    ['../x', { id: '../x' }],
    ['an absolute id', { id: '/etc' }],
    ['an empty id', { id: '' }],
    ['not JSON', '}{'],
  ])('refuses %s without crashing and goes on to the next job', async (_name, body) => {
    await q.drop('bad.json', body);
    await box.makeJob('good', { steps: ['true'] });
    await q.drop('zgood.json', { id: 'good' });
    const w = startWorker(box, ['--max-jobs', '1']);
    expect((await w.exited).code).toBe(0);
    expect(await readdir(q.dir('failed'))).toEqual(['bad.json', 'bad.json.reason']);
    expect(
      JSON.parse(await readFile(path.join(q.dir('failed'), 'bad.json.reason'), 'utf8')).errorCode,
    ).toBe('BAD_REQUEST');
    expect(await q.result('good')).toMatchObject({ status: 'success' });
    expect(await readdir(box.jobsDir)).toEqual(['good']);
  });

  it('returns the stored result for a re-delivered finished job without running it again', async () => {
    const counter = path.join(box.root, 'count');
    await box.makeJob('once', { steps: [`echo run >> ${counter}`] });
    await q.drop('once.json', { id: 'once' });
    expect((await startWorker(box, ['--max-jobs', '1']).exited).code).toBe(0);
    await q.drop('once.json', { id: 'once' });
    expect((await startWorker(box, ['--max-jobs', '1']).exited).code).toBe(0);
    expect(await readFile(counter, 'utf8')).toBe('run\n');
    expect(await q.result('once')).toMatchObject({ status: 'success', replayed: true, attempt: 1 });
    await q.drop('once.json', { id: 'once', force: true });
    expect((await startWorker(box, ['--max-jobs', '1']).exited).code).toBe(0);
    expect(await readFile(counter, 'utf8')).toBe('run\nrun\n');
    expect(await q.result('once')).toMatchObject({ attempt: 2 });
  });

  it('two worker processes on one queue run each of 50 jobs exactly once', async () => {
    const runs = path.join(box.root, 'runs');
    const a = startWorker(box, ['--id', 'a']);
    const b = startWorker(box, ['--id', 'b']);
    await Promise.all([a.waitForOutput('taking requests'), b.waitForOutput('taking requests')]);
    for (let i = 0; i < 50; i++)
      await q.drop(`j${i}.json`, { id: `j${i}`, steps: [`echo $JW_JOB_ID >> ${runs}`] });
    await waitFor(async () => (await readdir(q.dir('done'))).length === 50, 60_000);
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    const lines = (await readFile(runs, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(50);
    expect(new Set(lines).size).toBe(50);
    const byWorker = await Promise.all(
      Array.from({ length: 50 }, (_, i) => q.result(`j${i}`).then((r) => r.workerId)),
    );
    expect(new Set(byWorker)).toEqual(new Set(['a', 'b']));
  });

  it('on SIGTERM lets the running job finish within the grace period, then exits 0', async () => {
    await box.makeJob('t', { steps: ['sleep 1; echo finished'] });
    await q.drop('t.json', { id: 't' });
    const w = startWorker(box, ['--grace-period', '10']);
    await waitFor(
      async () => (await box.readResult('t').catch(() => undefined))?.steps?.length === 1,
    );
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(await q.result('t')).toMatchObject({ status: 'success' });
  });

  it('on SIGTERM past the grace period cancels the job and gives the request back', async () => {
    const pidFile = path.join(box.root, 'step.pid');
    await box.makeJob('t', { steps: [`echo $$ > ${pidFile}; sleep 30`] });
    await q.drop('t.json', { id: 't' });
    const w = startWorker(box, ['--grace-period', '300ms', '--kill-grace', '1']);
    const stepPid = Number(await waitFor(() => readFile(pidFile, 'utf8').catch(() => '')));
    expect(pidAlive(stepPid)).toBe(true);
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(pidAlive(stepPid)).toBe(false);
    expect(await readdir(q.dir('pending'))).toEqual(['t.json']);
    expect((await box.readResult('t')).status).toBe('requeued');
    const claim = JSON.parse(await readFile(path.join(box.jobsDir, 't/results/.claim'), 'utf8'));
    expect(Date.parse(claim.expiresAt)).toBeLessThanOrEqual(Date.now());
  });

  it('recovers the job of a worker killed with SIGKILL: attempt 2, run once to the end', async () => {
    const runs = path.join(box.root, 'runs');
    await box.makeJob('k', { steps: [`echo start >> ${runs}; sleep 2; echo done >> ${runs}`] });
    await q.drop('k.json', { id: 'k' });
    const first = startWorker(box, ['--lease', '1']);
    await waitFor(async () => (await readFile(runs, 'utf8').catch(() => '')).includes('start'));
    first.kill('SIGKILL');
    await first.exited;
    const second = startWorker(box, ['--lease', '1', '--max-jobs', '1']);
    expect((await second.exited).code).toBe(0);
    expect(await q.result('k')).toMatchObject({ status: 'success', attempt: 2 });
    expect(await readFile(runs, 'utf8')).toBe('start\nstart\ndone\n');
    expect(await readdir(q.dir('done'))).toEqual(['k.json']);
  });

  it('exits 2 on bad settings', async () => {
    expect((await startWorker(box, ['--concurrency', '0']).exited).code).toBe(2);
    expect((await startWorker(box, ['--no-such-flag']).exited).code).toBe(2);
    expect((await startWorker(box, [], { FILE_MAX_JOBS: 'many' }).exited).code).toBe(2);
    const w = startWorker(box, ['--log-format', 'xml']);
    expect((await w.exited).code).toBe(2);
    expect(w.stderr).toMatch(/--log-format/);
  });

  it('dry-runs ./test-payload.json: prints the result, exit 0 on success and 1 otherwise', async () => {
    await writeFile(
      path.join(box.root, 'test-payload.json'),
      JSON.stringify({ id: 'dry-run-test', steps: ["echo 'Testing environment'"] }),
    );
    const ok = startWorker(box, ['--dry-run']);
    expect((await ok.exited).code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      id: 'dry-run-test',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
    });
    expect(await box.readLog('dry-run-test', 0)).toBe('Testing environment\n');
    await writeFile(
      path.join(box.root, 'test-payload.json'),
      JSON.stringify({ id: 'dry-run-test', steps: ['exit 3'] }),
    );
    const bad = startWorker(box, ['--dry-run']);
    expect((await bad.exited).code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ status: 'failed', exitCode: 3 });
  });
});
