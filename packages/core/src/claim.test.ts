import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLAIM_FILE, type ClaimRecord, claimJob, findStaleJobs, readClaim } from './claim.js';
import { writeManifest } from './manifest.js';

let box: Sandbox;
let jobDir: string;
beforeEach(async () => {
  box = await createSandbox();
  jobDir = await box.makeJob('j', { steps: ['true'] }, { 'results/.keep': '' });
});
afterEach(async () => {
  await box.cleanup();
});

const claimFile = () => path.join(jobDir, 'results', CLAIM_FILE);

describe('claimJob', () => {
  it('creates the claim exclusively: a second claimer is busy for the rest of the lease', async () => {
    const first = await claimJob(jobDir, { workerId: 'a', leaseMs: 10_000 });
    expect(first.kind).toBe('claimed');
    const second = await claimJob(jobDir, { workerId: 'b', leaseMs: 10_000 });
    expect(second.kind).toBe('busy');
    if (second.kind === 'busy') {
      expect(second.holder.workerId).toBe('a');
      expect(second.retryInMs).toBeGreaterThan(9_000);
    }
  });

  it('lets exactly one of many concurrent claimers win', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        claimJob(jobDir, { workerId: `w${i}`, leaseMs: 10_000 }),
      ),
    );
    expect(attempts.filter((a) => a.kind === 'claimed')).toHaveLength(1);
  });

  it('renews the lease and releases only its own claim', async () => {
    const a = await claimJob(jobDir, { workerId: 'a', leaseMs: 1000 });
    if (a.kind !== 'claimed') throw new Error('not claimed');
    const before = (await readClaim(path.join(jobDir, 'results')))!.expiresAt;
    await new Promise((r) => setTimeout(r, 20));
    expect(await a.claim.renew()).toBe(true);
    expect((await readClaim(path.join(jobDir, 'results')))!.expiresAt > before).toBe(true);
    await a.claim.release();
    expect(await readClaim(path.join(jobDir, 'results'))).toBeUndefined();
  });

  it('takes over an expired claim with the next attempt number, and only once', async () => {
    const stale: ClaimRecord = {
      token: 'old',
      workerId: 'dead',
      pid: 999_999,
      hostname: 'elsewhere',
      pidNamespace: null,
      attempt: 1,
      claimedAt: new Date(0).toISOString(),
      renewedAt: new Date(0).toISOString(),
      expiresAt: new Date(Date.now() - 1).toISOString(),
      leaseMs: 1000,
      request: { id: 'j', steps: ['echo recovered'] },
    };
    await writeFile(claimFile(), JSON.stringify(stale));
    expect(await findStaleJobs(box.jobsDir)).toEqual(['j']);
    const attempts = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        claimJob(jobDir, { workerId: `w${i}`, leaseMs: 10_000 }),
      ),
    );
    const won = attempts.filter((a) => a.kind === 'claimed');
    expect(won).toHaveLength(1);
    if (won[0]?.kind === 'claimed') {
      expect(won[0].claim.attempt).toBe(2);
      expect(won[0].previous?.request?.steps).toEqual(['echo recovered']);
    }
    expect(await findStaleJobs(box.jobsDir)).toEqual([]);
  });

  it('treats a claim of a dead process on this host as expired', async () => {
    const child = spawn('true');
    await once(child, 'exit');
    const a = await claimJob(jobDir, { workerId: 'a', leaseMs: 60_000 });
    if (a.kind !== 'claimed') throw new Error('not claimed');
    a.claim.stopKeepAlive();
    const record = JSON.parse(await readFile(claimFile(), 'utf8')) as ClaimRecord;
    await writeFile(claimFile(), JSON.stringify({ ...record, pid: child.pid }));
    expect(await findStaleJobs(box.jobsDir)).toEqual(['j']);
    const b = await claimJob(jobDir, { workerId: 'b', leaseMs: 60_000 });
    expect(b.kind).toBe('claimed');
  });

  it('reports a lost claim to keepAlive', async () => {
    const a = await claimJob(jobDir, { workerId: 'a', leaseMs: 150 });
    if (a.kind !== 'claimed') throw new Error('not claimed');
    const lost = new Promise<void>((resolve) => a.claim.keepAlive(resolve));
    await writeFile(claimFile(), JSON.stringify({ ...a.claim.record, token: 'someone-else' }));
    await lost;
  });

  it('lists fresh claims and finished jobs without a claim as not stale, a finished job with an expired claim as stale', async () => {
    const a = await claimJob(jobDir, { workerId: 'a', leaseMs: 10_000 });
    expect(a.kind).toBe('claimed');
    expect(await findStaleJobs(box.jobsDir)).toEqual([]);
    const other = await box.makeJob('done', { steps: ['true'] }, { 'results/.keep': '' });
    await writeManifest(other, {
      schemaVersion: 1,
      jobId: 'done',
      status: 'success',
      exitCode: 0,
      attempt: 1,
      worker: { id: 'w', hostname: 'h', pid: 1, transport: 't', version: '0' },
      timing: { start: '', end: '', durationMs: 0 },
      steps: [],
      artifacts: [],
    });
    expect(await findStaleJobs(box.jobsDir)).toEqual([]);
    // Its worker died before the result message went out: recovery sends it again.
    await writeFile(
      path.join(other, 'results', CLAIM_FILE),
      JSON.stringify({ token: 'x', expiresAt: new Date(0).toISOString() }),
    );
    expect(await findStaleJobs(box.jobsDir)).toEqual(['done']);
  });

  it('never re-creates a released claim from a renewal in flight', async () => {
    for (let i = 0; i < 20; i++) {
      const a = await claimJob(jobDir, { workerId: 'a', leaseMs: 150 });
      if (a.kind !== 'claimed') throw new Error('not claimed');
      a.claim.keepAlive(() => {});
      const renewal = a.claim.renew();
      await a.claim.release();
      await renewal;
      await expect(readFile(claimFile(), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });
});

describe('claims left torn by a killed writer', () => {
  let box2: Sandbox;
  beforeEach(async () => {
    box2 = await createSandbox();
  });
  afterEach(() => box2.cleanup());

  it('never writes an empty claim, and takes over an empty one left by an older worker', async () => {
    const dir = await box2.makeJob('torn', { steps: ['true'] }, { 'results/.keep': '' });
    const file = path.join(dir, 'results', CLAIM_FILE);
    await writeFile(file, '');
    // Fresh: it may be a writer still at work.
    expect((await claimJob(dir, { workerId: 'a', leaseMs: 5000 })).kind).toBe('busy');
    expect(await findStaleJobs(box2.jobsDir)).toEqual([]);
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    expect(await findStaleJobs(box2.jobsDir)).toEqual(['torn']);
    const b = await claimJob(dir, { workerId: 'b', leaseMs: 5000 });
    expect(b.kind).toBe('claimed');
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ workerId: 'b' });
    expect((await readdir(path.join(dir, 'results'))).sort()).toEqual(['.claim', '.keep']);
  });
});
