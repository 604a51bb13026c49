import {
  chmod,
  lstat,
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
import { isJwError } from './errors.js';
import { diffSnapshots, findChanges, sha256File, takeSnapshot } from './snapshot.js';
import { stageJob } from './stage.js';
import { artifactMatcher, syncArtifacts } from './sync.js';
import { createWorkspace } from './workspaces.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

async function staged(files: Record<string, string>) {
  const jobDir = await box.makeJob('j', { steps: ['true'] }, files);
  const ws = await createWorkspace(box.workspacesDir, 'j');
  const { snapshot } = await stageJob(jobDir, ws);
  return { jobDir, ws, before: snapshot };
}

describe('diff and sync', () => {
  it('finds added and modified files, not unchanged or same-content rewrites', async () => {
    const { jobDir, ws, before } = await staged({
      'same.txt': 'same',
      'edit.txt': 'v1',
      'touch.txt': 'touched',
      'rewrite.txt': 'abc',
      'mode.sh': 'x',
    });
    await writeFile(path.join(ws, 'edit.txt'), 'v2 longer');
    const later = new Date(Date.now() + 5000);
    await utimes(path.join(ws, 'touch.txt'), later, later);
    await writeFile(path.join(ws, 'rewrite.txt'), 'xyz');
    await chmod(path.join(ws, 'mode.sh'), 0o755);
    await mkdir(path.join(ws, 'out/deep'), { recursive: true });
    await writeFile(path.join(ws, 'out/deep/new.bin'), 'new');
    await symlink('out/deep/new.bin', path.join(ws, 'new-link'));
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: jobDir,
    });
    // Judged as the walk goes, without a second snapshot: the same changes.
    expect(await findChanges(before, { workspace: ws, source: jobDir })).toEqual(changes);
    expect(changes.map((c) => [c.path, c.change])).toEqual([
      ['edit.txt', 'modified'],
      ['mode.sh', 'modified'],
      ['new-link', 'added'],
      ['out/deep/new.bin', 'added'],
      ['rewrite.txt', 'modified'],
    ]);
  });

  it('copies changes to results/ with size and sha256, replacing stale copies, honouring globs', async () => {
    const { jobDir, ws, before } = await staged({ 'in.txt': 'in' });
    const results = path.join(jobDir, 'results');
    await mkdir(path.join(results, 'dist'), { recursive: true });
    await writeFile(path.join(results, 'dist/app.js'), 'stale from an earlier attempt');
    await mkdir(path.join(ws, 'dist'), { recursive: true });
    await mkdir(path.join(ws, 'node_modules/x'), { recursive: true });
    await writeFile(path.join(ws, 'dist/app.js'), 'fresh');
    await writeFile(path.join(ws, 'node_modules/x/i.js'), 'dep');
    await writeFile(path.join(ws, 'result.json'), 'a step must not overwrite the manifest');
    await writeFile(path.join(ws, 'step_0.log'), 'nor a log');
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: jobDir,
    });
    const synced = await syncArtifacts(ws, results, changes, { exclude: ['node_modules/**'] });
    expect(synced).toEqual([
      {
        path: 'dist/app.js',
        size: 5,
        sha256: await sha256File(path.join(ws, 'dist/app.js')),
        change: 'added',
      },
    ]);
    expect(await readFile(path.join(results, 'dist/app.js'), 'utf8')).toBe('fresh');
    await expect(stat(path.join(results, 'node_modules'))).rejects.toThrow();
    await expect(stat(path.join(results, 'result.json'))).rejects.toThrow();
  });

  it('copies a link out of the workspace as a link, not what it points to (SPEC 4)', async () => {
    const { jobDir, ws, before } = await staged({});
    const results = path.join(jobDir, 'results');
    await mkdir(results);
    await mkdir(path.join(ws, 'dist'));
    await symlink('/etc/passwd', path.join(ws, 'dist/outside-link'));
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: jobDir,
    });
    const synced = await syncArtifacts(ws, results, changes);
    expect(synced).toMatchObject([{ path: 'dist/outside-link', size: 0, change: 'added' }]);
    expect(await readlink(path.join(results, 'dist/outside-link'))).toBe('/etc/passwd');
  });

  it('copies an artifact with a 255-byte name and one with a newline in its name', async () => {
    const { jobDir, ws, before } = await staged({});
    const results = path.join(jobDir, 'results');
    await mkdir(results);
    const long = 'a'.repeat(255);
    await mkdir(path.join(ws, 'dist'));
    await writeFile(path.join(ws, 'dist', long), 'long');
    await writeFile(path.join(ws, 'line\nbreak.txt'), 'newline');
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: jobDir,
    });
    const synced = await syncArtifacts(ws, results, changes, { include: ['**/*.txt', 'dist/**'] });
    expect(synced.map((a) => a.path)).toEqual([`dist/${long}`, 'line\nbreak.txt']);
    expect(await readFile(path.join(results, 'dist', long), 'utf8')).toBe('long');
    expect(await readFile(path.join(results, 'line\nbreak.txt'), 'utf8')).toBe('newline');
    // No temp file is left beside them.
    expect((await readdir(path.join(results, 'dist'))).length).toBe(1);
  });

  it('refuses a link in results/ where an artifact goes, writing nothing through it', async () => {
    const elsewhere = path.join(box.root, 'elsewhere');
    await mkdir(elsewhere);
    const { jobDir, ws, before } = await staged({});
    const results = path.join(jobDir, 'results');
    await mkdir(results);
    await symlink(elsewhere, path.join(results, 'dist'));
    await mkdir(path.join(ws, 'dist/deeper'), { recursive: true });
    await writeFile(path.join(ws, 'dist/app.js'), 'x');
    await writeFile(path.join(ws, 'dist/deeper/b.js'), 'y');
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: jobDir,
    });
    const error = await syncArtifacts(ws, results, changes).catch((e) => e);
    expect(isJwError(error, 'BAD_JOB')).toBe(true);
    expect(error.message).toMatch(/results\/dist is a symlink/);
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('replaces a link standing where an artifact file goes instead of writing through it', async () => {
    const elsewhere = path.join(box.root, 'elsewhere.txt');
    await writeFile(elsewhere, 'untouched');
    const { jobDir, ws, before } = await staged({});
    const results = path.join(jobDir, 'results');
    await mkdir(results);
    await symlink(elsewhere, path.join(results, 'app.js'));
    await writeFile(path.join(ws, 'app.js'), 'fresh');
    const changes = await diffSnapshots(before, await takeSnapshot(ws), {
      workspace: ws,
      source: jobDir,
    });
    await syncArtifacts(ws, results, changes);
    expect(await readFile(elsewhere, 'utf8')).toBe('untouched');
    expect((await lstat(path.join(results, 'app.js'))).isFile()).toBe(true);
    expect(await readFile(path.join(results, 'app.js'), 'utf8')).toBe('fresh');
  });

  it('matches include and exclude globs, dotfiles included', () => {
    const m = artifactMatcher({ include: ['dist/**', '.env.out'], exclude: ['**/*.map'] });
    expect(m('dist/a.js')).toBe(true);
    expect(m('dist/.hidden')).toBe(true);
    expect(m('dist/a.js.map')).toBe(false);
    expect(m('src/a.ts')).toBe(false);
    expect(m('.env.out')).toBe(true);
    expect(artifactMatcher()('any/thing')).toBe(true);
    expect(artifactMatcher()('.claim')).toBe(false);
    expect(artifactMatcher()('result.json/inside')).toBe(false);
    expect(artifactMatcher()('a\nb')).toBe(true);
    expect(artifactMatcher({ include: ['*.txt'] })('a\nb.txt')).toBe(true);
  });
});
