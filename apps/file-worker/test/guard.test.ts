import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSandbox, exists, type Sandbox, waitFor } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

const run = promisify(execFile);

let box: Sandbox;
let q: ReturnType<typeof queue>;
let mounted: string | undefined;
beforeEach(async () => {
  box = await createSandbox('jw-file-guard-');
  q = queue(box);
});
afterEach(async () => {
  await killWorkers();
  if (mounted) await run('umount', [mounted]).catch(() => {});
  mounted = undefined;
  await box.cleanup();
});

function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function readJsonLines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A tmpfs of `size` at `dir`, or the reason it cannot be had (not root, no mount in a container). */
async function mountTmpfs(dir: string, size: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the tests do not run as root';
  await mkdir(dir, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  } catch (error) {
    return `mount is not permitted here (${(error as Error).message.trim()})`;
  }
  mounted = dir;
  return undefined;
}

describe('file-worker dead-letter file', () => {
  it('writes each rejected request as a JSON line, rotating by size', async () => {
    const dlq = path.join(box.root, 'dlq', 'dead.jsonl');
    await q.drop('garbage.json', 'not json at all');
    await q.drop('bad-id.json', { id: '../escape', steps: ['true'] });
    await q.drop('bad-env.json', { id: 'bad-env', env: 'not an object' });
    const w = startWorker(box, [
      '--dead-letter-file',
      dlq,
      '--dead-letter-max-size',
      '400',
      '--idle-timeout',
      '2s',
    ]);
    expect((await w.exited).code).toBe(0);
    const files = (await readdir(path.dirname(dlq))).sort();
    expect(files[0]).toBe('dead.jsonl');
    expect(files).toContain('dead.jsonl.1');
    const lines = [];
    for (const name of files.reverse())
      lines.push(...(await readJsonLines(path.join(box.root, 'dlq', name))));
    const byDelivery = new Map(lines.map((l) => [l.delivery, l]));
    expect(byDelivery.get('garbage.json')).toMatchObject({
      transport: 'file',
      workerId: 'worker-01',
      errorCode: 'BAD_REQUEST',
      payload: 'not json at all',
    });
    expect(Date.parse(byDelivery.get('garbage.json')!.time as string)).not.toBeNaN();
    expect(byDelivery.get('bad-id.json')).toMatchObject({ errorCode: 'BAD_REQUEST' });
    expect(byDelivery.get('bad-env.json')).toMatchObject({
      jobId: 'bad-env',
      errorCode: 'BAD_REQUEST',
      payload: '{"id":"bad-env","env":"not an object"}',
    });
    expect(typeof byDelivery.get('garbage.json')!.reason).toBe('string');
    // The queue's own dead-letter folder still gets them.
    expect(await exists(q.dir('failed/garbage.json'))).toBe(true);
  });
});

describe('file-worker disk guard', () => {
  it('takes no work while the workspaces filesystem is short of space, then runs it', async (ctx) => {
    const disk = path.join(box.root, 'disk');
    const why = await mountTmpfs(disk, '8m');
    if (why) {
      ctx.skip(`needs a small tmpfs: ${why}`);
      return;
    }
    const workspaces = path.join(disk, 'workspaces');
    const filler = path.join(disk, 'filler');
    await mkdir(workspaces);
    await writeFile(filler, Buffer.alloc(6 * 1024 * 1024, 1));
    await box.makeJob('later', { steps: ['echo ran > out.txt'] }, { 'in.txt': 'x' });
    const w = startWorker(box, [
      '--workspaces-dir',
      workspaces,
      '--min-free-space',
      '4MiB',
      '--disk-check-interval',
      '100ms',
      '--health-port',
      '0',
    ]);
    await w.waitForOutput('taking no work until there is room');
    await w.waitForOutput('health server on port');
    const port = logLines(w.stderr).find((l) => l.healthPort)!.healthPort as number;
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    const held = await readyz();
    expect(held.status).toBe(503);
    expect(held.body.reason).toMatch(/disk guard: .* free on the workspaces filesystem/);

    await q.drop('later.json', { id: 'later' });
    // Nothing to wait for while it holds: give it several checks, then look.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await readdir(q.dir('pending'))).toEqual(['later.json']);
    expect(await exists(path.join(box.jobsDir, 'later/results/result.json'))).toBe(false);

    await rm(filler);
    const result = await waitFor(() => q.result('later').catch(() => undefined));
    expect(result).toMatchObject({ id: 'later', status: 'success' });
    expect((await readyz()).status).toBe(200);
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    const log = logLines(w.stderr).map((l) => String(l.msg));
    expect(log.filter((m) => m.includes('taking no work until there is room'))).toHaveLength(1);
    expect(log.filter((m) => m === 'disk guard cleared: taking work again')).toHaveLength(1);
  });

  it('refuses a limit it cannot read', async () => {
    const w = startWorker(box, ['--min-free-space', 'lots']);
    expect((await w.exited).code).toBe(2);
    expect(w.stderr).toMatch(/--min-free-space: "lots" is not a size/);
  });
});
