import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { claimJob, readClaim, silentLogger } from '@jw/core';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from './agent-client.js';
import { InFlight } from './in-flight.js';
import { settleLeftovers } from './leftovers.js';
import { StatusOutbox } from './status-outbox.js';

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await createSandbox('jw-leftovers-');
});
afterEach(() => sandbox.cleanup());

/** A job whose claim names a process that has exited: a run killed at that instant. */
async function jobKilledAt(status: 'success' | 'running'): Promise<string> {
  const jobDir = path.join(sandbox.root, 'jobs', 'j1');
  await mkdir(path.join(jobDir, 'results'), { recursive: true });
  const taken = await claimJob(jobDir, { workerId: 'w', leaseMs: 60_000 });
  expect(taken.kind).toBe('claimed');
  const claimFile = path.join(jobDir, 'results', '.claim');
  const claim = JSON.parse(await readFile(claimFile, 'utf8'));
  claim.pid = spawnSync('true').pid;
  await writeFile(claimFile, JSON.stringify(claim));
  const manifest = {
    schemaVersion: 1,
    jobId: 'j1',
    status,
    exitCode: status === 'success' ? 0 : null,
  };
  await writeFile(path.join(jobDir, 'results', 'result.json'), JSON.stringify(manifest));
  return jobDir;
}

async function leftoversOf(jobDir: string) {
  const inFlight = new InFlight(path.join(sandbox.root, 'state'), silentLogger);
  await mkdir(path.join(sandbox.root, 'state'), { recursive: true });
  await inFlight.add('j1', jobDir);
  const outbox = new StatusOutbox({
    dir: path.join(sandbox.root, 'outbox'),
    // Never called: the outbox stays paused.
    client: new AgentClient({ server: 'http://127.0.0.1:9', timeoutMs: 30_000 }),
    logger: silentLogger,
    retryInitialMs: 20,
    retryMaxMs: 50,
  });
  await outbox.open({ paused: true });
  await settleLeftovers(inFlight, outbox, 'w', silentLogger);
  const left = {
    claim: await readClaim(path.join(jobDir, 'results')),
    stored: await outbox.stored(),
    inFlight: await inFlight.left(),
  };
  await outbox.close();
  return left;
}

describe('settleLeftovers', () => {
  it('sends a final job’s status again and drops the claim its killed run left', async () => {
    const left = await leftoversOf(await jobKilledAt('success'));
    expect(left.claim).toBeUndefined();
    expect(left.stored).toHaveLength(1);
    expect(left.inFlight).toEqual([]);
  });

  it('leaves the claim of a job that was still running: its next attempt takes it over', async () => {
    const left = await leftoversOf(await jobKilledAt('running'));
    expect(left.claim?.workerId).toBe('w');
    expect(left.stored).toHaveLength(0);
  });
});
