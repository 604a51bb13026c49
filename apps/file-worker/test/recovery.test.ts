import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createSandbox, exists, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
beforeEach(async () => {
  box = await createSandbox('jw-file-recovery-');
  q = queue(box);
});
afterEach(async () => {
  await killWorkers();
  await box.cleanup();
});

const GIVE_BACK = 'giving back a request left in processing/';
const count = (output: string, message: string) =>
  output.split('\n').filter((line) => line.includes(message)).length;

/** Every file under `dir` whose name looks like a temp file or a claim. */
async function litter(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (/\.tmp$|^\.claim/.test(entry.name))
      found.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return found;
}

/** The pid of a process that has already exited on this host. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

describe('file-worker recovery', () => {
  it('takes a killed worker’s request back at once (not after the lease), logs it once, and leaves no litter', async () => {
    const runs = path.join(box.root, 'runs');
    // The first attempt runs until its worker is killed; the second ends at once.
    await box.makeJob('k', {
      steps: [`echo start >> ${runs}; [ "$JW_ATTEMPT" = 1 ] && sleep 60; echo done >> ${runs}`],
    });
    await q.drop('k.json', { id: 'k' });
    // A lease far longer than the test: only the dead pid can free the job in time.
    const lease = ['--lease', '10m'];
    const first = startWorker(box, ['--id', 'a', ...lease]);
    await waitFor(async () => (await readFile(runs, 'utf8').catch(() => '')).includes('start'));
    const b = startWorker(box, ['--id', 'b', ...lease]);
    const c = startWorker(box, ['--id', 'c', ...lease]);
    await Promise.all([b.waitForOutput('taking requests'), c.waitForOutput('taking requests')]);
    first.kill('SIGKILL');
    await first.exited;
    const result = await waitFor(() => q.result('k').catch(() => undefined), 45_000);
    expect(result).toMatchObject({ status: 'success', attempt: 2 });
    expect(['b', 'c']).toContain(result.workerId);
    b.kill('SIGTERM');
    c.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    expect((await c.exited).code).toBe(0);
    expect(count(b.stderr, GIVE_BACK) + count(c.stderr, GIVE_BACK)).toBe(1);
    expect(await readFile(runs, 'utf8')).toBe('start\nstart\ndone\n');
    expect(await readdir(q.dir('processing'))).toEqual([]);
    expect(await readdir(q.dir('pending'))).toEqual([]);
    expect(await readdir(q.dir('done'))).toEqual(['k.json']);
    expect(await litter(q.root)).toEqual([]);
    expect(await litter(path.join(box.jobsDir, 'k', 'results'))).toEqual([]);
  });

  it('sends the stored result of a job whose worker died after it ended, and removes the dead claim', async () => {
    // What a kill between the final result.json and the result message leaves: the
    // request taken, then the job claimed and run to its end.
    await mkdir(q.dir('processing'), { recursive: true });
    await writeFile(path.join(q.dir('processing'), 'f~0badf00d.json'), JSON.stringify({ id: 'f' }));
    const jobDir = await finishedJobOfDeadWorker('f');
    const w = startWorker(box, ['--lease', '10m']);
    const result = await waitFor(() => q.result('f').catch(() => undefined));
    expect(result).toMatchObject({ id: 'f', status: 'success', replayed: true });
    await waitFor(async () => (await readdir(q.dir('done'))).includes('f.json'));
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(await readdir(q.dir('processing'))).toEqual([]);
    expect(await exists(path.join(jobDir, 'results', '.claim'))).toBe(false);
    expect(await exists(path.join(jobDir, 'results', 'step_0.log'))).toBe(false);
    expect(count(w.stderr, 'sent the stored result')).toBe(1);
    expect(await litter(q.root)).toEqual([]);
  });

  it('removes a dead claim left beside a result it has sent, and not one of another transport', async () => {
    // A kill after the request went to done/ but before the claim was removed.
    const sent = await finishedJobOfDeadWorker('sent');
    await mkdir(q.dir('results'), { recursive: true });
    await writeFile(
      path.join(q.dir('results'), 'sent.json'),
      JSON.stringify({ id: 'sent', status: 'success', exitCode: 0, attempt: 1, workerId: 'dead' }),
    );
    const other = await finishedJobOfDeadWorker('other');
    const w = startWorker(box, ['--lease', '10m']);
    await waitFor(async () => !(await exists(path.join(sent, 'results', '.claim'))));
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(await exists(path.join(other, 'results', '.claim'))).toBe(true);
    expect(await readdir(q.dir('results'))).toEqual(['sent.json']);
  });
});

/** A job whose worker (gone on this host) wrote the final result.json and died holding the claim. */
async function finishedJobOfDeadWorker(id: string): Promise<string> {
  const jobDir = await box.makeJob(id, { steps: ['echo never again'] });
  const now = new Date();
  await mkdir(path.join(jobDir, 'results'));
  await writeFile(
    path.join(jobDir, 'results', 'result.json'),
    JSON.stringify({
      schemaVersion: 1,
      jobId: id,
      status: 'success',
      exitCode: 0,
      attempt: 1,
      worker: { id: 'dead', hostname: os.hostname(), pid: 1, transport: 'file', version: '0' },
      timing: { start: now.toISOString(), end: now.toISOString(), durationMs: 0 },
      steps: [],
      artifacts: [],
    }),
  );
  await writeFile(
    path.join(jobDir, 'results', '.claim'),
    JSON.stringify({
      token: 'killed-worker',
      workerId: 'dead',
      pid: deadPid(),
      hostname: os.hostname(),
      pidNamespace: readlinkSync('/proc/self/ns/pid'),
      attempt: 1,
      claimedAt: now.toISOString(),
      renewedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 600_000).toISOString(),
      leaseMs: 600_000,
    }),
  );
  return jobDir;
}
