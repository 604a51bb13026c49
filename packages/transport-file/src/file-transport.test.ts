import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { claimJob, createWorker, type WorkerOptions } from '@jw/core';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileTransport } from './file-transport.js';
import { queueDirs } from './queue-dirs.js';
import { tempFileName } from './queue-files.js';

let box: Sandbox;
let q: ReturnType<typeof queueDirs>;
beforeEach(async () => {
  box = await createSandbox();
  q = queueDirs(path.join(box.root, 'queue'));
});
afterEach(async () => {
  await box.cleanup();
});

const worker = (
  extra: Partial<WorkerOptions> = {},
  transport = createFileTransport({ queueDir: q.root, stableMs: 50, intervalMs: 100 }),
) =>
  createWorker({
    transport,
    jobsDir: box.jobsDir,
    workspacesDir: box.workspacesDir,
    env: { PATH: process.env.PATH ?? '' },
    ...extra,
  });

async function drop(name: string, body: unknown) {
  await mkdir(q.pending, { recursive: true });
  const tmp = path.join(q.root, `.${name}.tmp`);
  await writeFile(tmp, typeof body === 'string' ? body : JSON.stringify(body));
  await rename(tmp, path.join(q.pending, name));
}

const readJson = async (file: string) => JSON.parse(await readFile(file, 'utf8'));

describe('file transport', () => {
  it('takes requests from pending/, writes results/{id}.json and moves them to done/', async () => {
    await box.makeJob('a', { steps: ['echo a'] });
    await drop('a.json', { id: 'a' });
    await drop('inline.json', { steps: ['echo inline'] });
    const summary = await worker({ maxJobs: 2 }).run();
    expect(summary.handled).toBe(2);
    expect(await readJson(path.join(q.results, 'a.json'))).toMatchObject({
      id: 'a',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
    });
    expect(await readJson(path.join(q.results, 'inline.json'))).toMatchObject({
      id: 'inline',
      status: 'success',
    });
    expect((await readdir(q.done)).sort()).toEqual(['a.json', 'inline.json']);
    expect(await readdir(q.pending)).toEqual([]);
    expect(await readdir(q.processing)).toEqual([]);
  });

  it('moves bad requests to failed/ with a reason, answering when the id is known', async () => {
    await drop('garbage.json', '{{{');
    await drop('escape.json', { id: '../x' });
    await drop('known.json', { id: 'known', steps: [] });
    const w = worker();
    let rejected = 0;
    w.on('rejected', () => ++rejected === 3 && void w.stop());
    const summary = await w.run();
    expect(summary.rejected).toBe(3);
    expect((await readdir(q.failed)).sort()).toEqual([
      'escape.json',
      'escape.json.reason',
      'garbage.json',
      'garbage.json.reason',
      'known.json',
      'known.json.reason',
    ]);
    expect(await readJson(path.join(q.failed, 'garbage.json.reason'))).toMatchObject({
      errorCode: 'BAD_REQUEST',
      error: expect.stringMatching(/not JSON/),
    });
    expect(await readJson(path.join(q.results, 'known.json'))).toMatchObject({
      id: 'known',
      status: 'error',
      errorCode: 'BAD_REQUEST',
    });
    expect(await readdir(q.results)).toEqual(['known.json']);
  });

  it('waits for a file being written in place until its size stops changing', async () => {
    await mkdir(q.pending, { recursive: true });
    const file = path.join(q.pending, 'slow.json');
    const w = worker(
      { maxJobs: 1 },
      createFileTransport({ queueDir: q.root, stableMs: 300, intervalMs: 100 }),
    );
    const running = w.run();
    await writeFile(file, '{"id":"slow",');
    await new Promise((r) => setTimeout(r, 150));
    await writeFile(file, '{"id":"slow","steps":["echo complete"]}');
    await running;
    expect(await readJson(path.join(q.results, 'slow.json'))).toMatchObject({ status: 'success' });
    expect(await readdir(q.failed)).toEqual([]);
  });

  it('lets two workers on one queue run each of 50 jobs exactly once', async () => {
    for (let i = 0; i < 50; i++)
      await drop(`j${i}.json`, { id: `j${i}`, steps: ['echo "$JW_JOB_ID" >> "$RUNS"'] });
    const runs = path.join(box.root, 'runs.txt');
    const env = { PATH: process.env.PATH ?? '', RUNS: runs };
    const a = worker({ workerId: 'a', env });
    const b = worker({ workerId: 'b', env });
    let handled = 0;
    const onResult = () => {
      if (++handled === 50) void Promise.all([a.stop(), b.stop()]);
    };
    a.on('result', onResult);
    b.on('result', onResult);
    const [sa, sb] = await Promise.all([a.run(), b.run()]);
    expect(sa.handled + sb.handled).toBe(50);
    expect(sa.handled).toBeGreaterThan(0);
    expect(sb.handled).toBeGreaterThan(0);
    const lines = (await readFile(runs, 'utf8')).trim().split('\n').sort();
    expect(lines).toHaveLength(50);
    expect(new Set(lines).size).toBe(50);
    expect(await readdir(q.done)).toHaveLength(50);
  });

  it('ends next() with null when aborted while looking at a candidate another worker took', async () => {
    await drop('look.json', { id: 'look', steps: ['true'] });
    const transport = createFileTransport({ queueDir: q.root, stableMs: 50, intervalMs: 100 });
    await transport.start({
      workerId: 'w-abort',
      jobsDir: box.jobsDir,
      concurrency: 1,
      logger: capture(),
      cancelJob: () => false,
      activeJobs: () => [],
      signal: new AbortController().signal,
    });
    try {
      // Taken by another worker after it was seen: the look finds it gone, after the abort
      // came, and no new request is left to wake a wait begun then.
      await rename(path.join(q.pending, 'look.json'), path.join(box.root, 'elsewhere.json'));
      const fetch = new AbortController();
      const next = transport.next(fetch.signal);
      fetch.abort();
      expect(await next).toBeNull();
    } finally {
      await transport.stop();
    }
  });

  it('cancels a running job when a file named after it lands in cancel/', async () => {
    await drop('c.json', { id: 'c', steps: ['sleep 10'] });
    const w = worker({ maxJobs: 1 });
    w.on('event', (e) => e.state === 'running' && void writeFile(path.join(q.cancel, 'c'), ''));
    await w.run();
    expect(await readJson(path.join(q.results, 'c.json'))).toMatchObject({
      status: 'cancelled',
      errorCode: 'CANCELLED',
    });
    await waitFor(async () => (await readdir(q.cancel)).length === 0);
  });

  it('gives back a request left in processing/ by a dead worker', async () => {
    await mkdir(q.processing, { recursive: true });
    const file = path.join(q.processing, 'orphan~deadbeef.json');
    await writeFile(file, JSON.stringify({ id: 'orphan', steps: ['echo recovered'] }));
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    const transport = createFileTransport({
      queueDir: q.root,
      stableMs: 50,
      intervalMs: 100,
      orphanAfterMs: 0,
    });
    await worker({ maxJobs: 1 }, transport).run();
    expect(await readJson(path.join(q.results, 'orphan.json'))).toMatchObject({
      status: 'success',
    });
    expect(await readdir(q.done)).toEqual(['orphan.json']);
  });

  it('keeps a request of a job held by another worker in processing/ and gives it back on stop', async () => {
    const dir = await box.makeJob('held', { steps: ['true'] }, { 'results/.keep': '' });
    const held = await claimJob(dir, { workerId: 'other', leaseMs: 60_000 });
    expect(held.kind).toBe('claimed');
    await drop('held.json', { id: 'held' });
    const log = capture();
    const w = worker({ logger: log });
    const running = w.run();
    await waitFor(() => log.has('job claimed elsewhere'));
    expect(await readdir(q.processing)).toHaveLength(1);
    expect(await readdir(q.pending)).toEqual([]);
    await w.stop();
    await running;
    expect(log.count('job received')).toBe(1);
    expect(await readdir(q.pending)).toEqual(['held.json']);
    await expect(stat(path.join(q.results, 'held.json'))).rejects.toThrow();
  });

  it('runs a postponed request as soon as the other worker’s claim is gone, not after its lease', async () => {
    const dir = await box.makeJob('held', { steps: ['echo ran'] }, { 'results/.keep': '' });
    const held = await claimJob(dir, { workerId: 'other', leaseMs: 600_000 });
    if (held.kind !== 'claimed') throw new Error('not claimed');
    await drop('held.json', { id: 'held' });
    const log = capture();
    const w = worker({ logger: log, maxJobs: 1 });
    const running = w.run();
    await waitFor(() => log.has('job claimed elsewhere'));
    await held.claim.release();
    expect((await running).handled).toBe(1);
    expect(await readJson(path.join(q.results, 'held.json'))).toMatchObject({ status: 'success' });
    expect(await readdir(q.processing)).toEqual([]);
  });

  it('removes temp files of dead writers from its folders at start, and nothing else', async () => {
    await mkdir(q.results, { recursive: true });
    const dead = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
    const deadTemp = path.join(q.results, tempFileName(dead));
    const liveTemp = path.join(q.results, tempFileName(process.pid));
    const oldTemp = path.join(q.results, '.x.json.0a1b2c.tmp');
    const freshTemp = path.join(q.results, '.y.json.0a1b2c.tmp');
    for (const file of [deadTemp, liveTemp, oldTemp, freshTemp]) await writeFile(file, '{');
    const old = new Date(Date.now() - 2 * 3600_000);
    await utimes(oldTemp, old, old);
    const w = worker();
    const running = w.run();
    await waitFor(async () => !(await readdir(q.results)).includes(path.basename(deadTemp)));
    await w.stop();
    await running;
    expect((await readdir(q.results)).sort()).toEqual(
      [path.basename(liveTemp), path.basename(freshTemp)].sort(),
    );
  });
});

/** A logger that keeps its messages, for waiting on what a worker did. */
function capture() {
  const messages: string[] = [];
  const keep = (_obj: unknown, msg?: string) => {
    if (msg) messages.push(msg);
  };
  return {
    debug: keep,
    info: keep,
    warn: keep,
    error: keep,
    has: (text: string) => messages.some((m) => m.includes(text)),
    count: (text: string) => messages.filter((m) => m.includes(text)).length,
  };
}
