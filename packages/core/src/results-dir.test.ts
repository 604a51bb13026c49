import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isJwError } from './errors.js';
import { writeFileAtomic } from './manifest.js';
import { openResultsDir, prepareResultsDir, ResultsDirs, tempName } from './results-dir.js';
import { StepLog } from './step-log.js';

let box: Sandbox;
let elsewhere: string;
beforeEach(async () => {
  box = await createSandbox();
  elsewhere = path.join(box.root, 'elsewhere');
  await mkdir(elsewhere);
});
afterEach(async () => {
  await box.cleanup();
});

const refusal = (error: unknown) => isJwError(error, 'BAD_JOB') && error.message;

describe('results dir', () => {
  it('creates a missing results/ as a real directory', async () => {
    const jobDir = await box.makeJob('j', { steps: ['true'] });
    expect(await prepareResultsDir(jobDir)).toBe(path.join(jobDir, 'results'));
    expect((await lstat(path.join(jobDir, 'results'))).isDirectory()).toBe(true);
  });

  it('says whether it made results/, and names the step logs an existing one holds', async () => {
    const jobDir = await box.makeJob('j', { steps: ['true'] });
    expect(await openResultsDir(jobDir)).toEqual({
      dir: path.join(jobDir, 'results'),
      created: true,
      stepLogs: [],
    });
    for (const name of ['step_0.log', 'step_12.log', 'step_x.log', 'out.txt'])
      await writeFile(path.join(jobDir, 'results', name), '');
    const again = await openResultsDir(jobDir);
    expect(again.created).toBe(false);
    expect(again.stepLogs.sort()).toEqual(['step_0.log', 'step_12.log']);
  });

  it('refuses a results/ that is a link, or holds a link in a name the worker writes', async () => {
    const jobDir = await box.makeJob('j', { steps: ['true'] });
    await symlink(elsewhere, path.join(jobDir, 'results'));
    expect(refusal(await prepareResultsDir(jobDir).catch((e) => e))).toMatch(
      /^results is a symlink/,
    );
    for (const name of ['result.json', 'step_0.log', '.claim']) {
      const dir = await box.makeJob(`k${name}`, { steps: ['true'] });
      await mkdir(path.join(dir, 'results'));
      await symlink(path.join(elsewhere, name), path.join(dir, 'results', name));
      expect(refusal(await prepareResultsDir(dir).catch((e) => e))).toMatch(
        `results/${name} is a symlink`,
      );
    }
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('refuses a results/ that is a file', async () => {
    const jobDir = await box.makeJob('j', { steps: ['true'] }, { results: 'a file' });
    expect(refusal(await prepareResultsDir(jobDir).catch((e) => e))).toMatch(/not a directory/);
  });

  it('makes artifact dirs without following a link, replacing a stale file', async () => {
    const jobDir = await box.makeJob('j', { steps: ['true'] });
    const results = await prepareResultsDir(jobDir);
    await writeFile(path.join(results, 'was-a-file'), 'stale');
    await symlink(elsewhere, path.join(results, 'out'));
    const dirs = new ResultsDirs(results);
    await dirs.ensure('a/b/c');
    await dirs.ensure('was-a-file/x');
    expect((await lstat(path.join(results, 'a/b/c'))).isDirectory()).toBe(true);
    expect((await lstat(path.join(results, 'was-a-file/x'))).isDirectory()).toBe(true);
    expect(refusal(await dirs.ensure('out/deeper').catch((e) => e))).toMatch(
      /^results\/out is a symlink/,
    );
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('never writes a step log or an atomic file through a link', async () => {
    const jobDir = await box.makeJob('j', { steps: ['true'] });
    const results = await prepareResultsDir(jobDir);
    const target = path.join(elsewhere, 'target');
    await writeFile(target, 'untouched');
    await symlink(target, path.join(results, 'step_3.log'));
    expect(refusal(await StepLog.create(results, 3).catch((e) => e))).toMatch(
      /results\/step_3.log is a symlink/,
    );
    await symlink(target, path.join(results, 'result.json'));
    await writeFileAtomic(path.join(results, 'result.json'), '{}');
    expect(await readFile(target, 'utf8')).toBe('untouched');
    expect((await lstat(path.join(results, 'result.json'))).isFile()).toBe(true);
  });

  it('names temp files with a short fixed length whatever the target', () => {
    const name = path.basename(tempName('/x'));
    expect(name).toMatch(/^\.jw-[0-9a-f]{12}\.tmp$/);
  });
});
