import { execFileSync } from 'node:child_process';
import { lstat, mkdir, open, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, exists, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
beforeEach(async () => {
  box = await createSandbox('jw-file-hostile-');
  q = queue(box);
  await mkdir(q.dir('pending'), { recursive: true });
});
afterEach(async () => {
  await killWorkers();
  await box.cleanup();
});

const reasonOf = async (name: string) =>
  JSON.parse(await readFile(path.join(q.dir('failed'), `${name}.reason`), 'utf8'));
const linesOf = (output: string, message: string) =>
  output.split('\n').filter((line) => line.includes(message));

describe('file-worker on a hostile queue folder', () => {
  it('dead-letters a FIFO named *.json without opening it, runs the request beside it, and exits on its idle time-out', async () => {
    execFileSync('mkfifo', [path.join(q.dir('pending'), 'fifo.json')]);
    await box.makeJob('good', { steps: ['true'] });
    await q.drop('zgood.json', { id: 'good' });
    const w = startWorker(box, ['--idle-timeout', '1s']);
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await q.result('good')).toMatchObject({ status: 'success' });
    expect((await lstat(path.join(q.dir('failed'), 'fifo.json'))).isFIFO()).toBe(true);
    expect(await reasonOf('fifo.json')).toMatchObject({
      errorCode: 'BAD_REQUEST',
      error: expect.stringMatching(/FIFO/),
    });
    expect(await readdir(q.dir('pending'))).toEqual([]);
    expect(linesOf(w.stderr, 'bad request file')).toHaveLength(1);
  });

  it('stops on SIGTERM with a FIFO (and a link to one) dropped into pending/ while it runs', async () => {
    const w = startWorker(box);
    await w.waitForOutput('taking requests');
    execFileSync('mkfifo', [path.join(q.root, 'pipe')]);
    await symlink('../pipe', path.join(q.dir('pending'), 'link.json'));
    execFileSync('mkfifo', [path.join(q.dir('pending'), 'fifo.json')]);
    await waitFor(() => exists(path.join(q.dir('failed'), 'fifo.json.reason')));
    await waitFor(() => exists(path.join(q.dir('failed'), 'link.json.reason')));
    expect((await reasonOf('link.json')).error).toMatch(/link to a FIFO/);
    w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
  });

  it('dead-letters a directory named *.json and runs the good request beside it (exit 0)', async () => {
    await mkdir(path.join(q.dir('pending'), 'dir.json', 'inner'), { recursive: true });
    await writeFile(path.join(q.dir('pending'), 'dir.json', 'inner', 'x.json'), '{}');
    await box.makeJob('good', { steps: ['true'] });
    await q.drop('zgood.json', { id: 'good' });
    const w = startWorker(box, ['--max-jobs', '1']);
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await q.result('good')).toMatchObject({ status: 'success' });
    expect((await lstat(path.join(q.dir('failed'), 'dir.json'))).isDirectory()).toBe(true);
    expect(await readdir(path.join(q.dir('failed'), 'dir.json', 'inner'))).toEqual(['x.json']);
    expect(await reasonOf('dir.json')).toMatchObject({
      errorCode: 'BAD_REQUEST',
      error: expect.stringMatching(/directory/),
    });
    expect(await readdir(q.dir('pending'))).toEqual([]);
  });

  it('runs a link to a request inside the queue folder, and never reads one pointing out of it', async () => {
    const marker = path.join(box.root, 'outside-ran');
    const outside = path.join(box.root, 'outside.json');
    await writeFile(outside, JSON.stringify({ id: 'outside', steps: [`touch ${marker}`] }));
    await symlink(outside, path.join(q.dir('pending'), 'a-outside.json'));
    await mkdir(q.dir('incoming'));
    await writeFile(
      path.join(q.dir('incoming'), 'inside.json'),
      JSON.stringify({ id: 'inside', steps: ['echo inside'] }),
    );
    await symlink('../incoming/inside.json', path.join(q.dir('pending'), 'z-inside.json'));
    const w = startWorker(box, ['--max-jobs', '1']);
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await q.result('inside')).toMatchObject({ status: 'success' });
    expect(await box.readLog('inside', 0)).toBe('inside\n');
    // done/ keeps what ran, not a link to a file that may change.
    const done = path.join(q.dir('done'), 'z-inside.json');
    expect((await lstat(done)).isFile()).toBe(true);
    expect(JSON.parse(await readFile(done, 'utf8'))).toMatchObject({ id: 'inside' });
    expect((await lstat(path.join(q.dir('failed'), 'a-outside.json'))).isSymbolicLink()).toBe(true);
    expect((await reasonOf('a-outside.json')).error).toMatch(/out of the queue/);
    expect(await exists(marker)).toBe(false);
    expect(await readdir(box.jobsDir)).toEqual(['inside']);
  });

  it('waits for a request written in place whose writer pauses past the stability window', async () => {
    const w = startWorker(box, ['--max-jobs', '1', '--log-level', 'debug']);
    await w.waitForOutput('taking requests');
    const file = await open(path.join(q.dir('pending'), 'slow.json'), 'w');
    await file.write('{"id":"slow","steps":');
    // The worker has seen the half for a whole stability window (200 ms) and waits on.
    await w.waitForOutput('not complete JSON yet');
    await file.write('["echo complete"]}');
    await file.close();
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await q.result('slow')).toMatchObject({ status: 'success' });
    expect(await box.readLog('slow', 0)).toBe('complete\n');
    expect(await readdir(q.dir('failed'))).toEqual([]);
  });

  it('dead-letters a request cut off mid-JSON once it has stayed unchanged for a few windows', async () => {
    await q.drop('cut.json', '{"id":"cut","steps":["echo never"');
    const w = startWorker(box, ['--idle-timeout', '3s']);
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect((await readdir(q.dir('failed'))).sort()).toEqual(['cut.json', 'cut.json.reason']);
    expect(await reasonOf('cut.json')).toMatchObject({ errorCode: 'BAD_REQUEST' });
    expect(await exists(path.join(box.jobsDir, 'cut'))).toBe(false);
  });

  it('runs a request postponed behind a running one of the same id before it goes idle', async () => {
    const runs = path.join(box.root, 'runs');
    await box.makeJob('dup', { steps: [`echo run >> ${runs}; sleep 2`] });
    await q.drop('a.json', { id: 'dup' });
    await q.drop('b.json', { id: 'dup' });
    // A rescan (every 10 s) comes too late: it must go when the first one ends.
    const w = startWorker(box, [
      '--concurrency',
      '2',
      '--idle-timeout',
      '2s',
      '--poll-interval',
      '10s',
    ]);
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(w.stderr).toContain('job claimed elsewhere; given back');
    expect(await readdir(q.dir('pending'))).toEqual([]);
    expect(await readdir(q.dir('processing'))).toEqual([]);
    expect((await readdir(q.dir('done'))).sort()).toEqual(['a.json', 'b.json']);
    expect(await readFile(runs, 'utf8')).toBe('run\n');
    expect(await q.result('dup')).toMatchObject({ status: 'success', replayed: true });
  });
});
