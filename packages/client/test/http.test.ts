import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { type Spawned, stopChild } from '@jw/testing/process';
import { type ReferenceBackend, startReferenceBackend } from '@jw/transport-http-poll/backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatedStep, HTTP_AGENT, jw, jwDone, startBinary } from './helpers.js';

let backend: ReferenceBackend;
let box: Sandbox;
let agent: Spawned;
let jobsDir: string;

beforeAll(async () => {
  backend = await startReferenceBackend();
  box = await createSandbox('jw-client-http-');
  // The agent's job dirs are {shared dir}/jobs/{id} (SPEC 8).
  jobsDir = path.join(box.root, 'shared', 'jobs');
  await mkdir(jobsDir, { recursive: true });
  agent = startBinary(HTTP_AGENT, [
    '--server',
    backend.url,
    '--shared-dir',
    path.join(box.root, 'shared'),
    '--workspaces-dir',
    box.workspacesDir,
    '--worker-id',
    'agent-1',
    '--max-jobs',
    '0',
    '--idle-timeout',
    '0',
    '--poll-interval',
    '0.2',
    '--status-poll-interval',
    '0.5',
    '--heartbeat-interval',
    '1',
  ]);
  await agent.waitForOutput('polling for jobs', 60_000);
});

afterAll(async () => {
  if (agent) await stopChild(agent.child);
  await backend?.close();
  await box?.cleanup();
});

describe('jw through the HTTP reference backend', () => {
  it("--follow prints step output live, exits with the job's code; workers and cancel", async () => {
    const gate = path.join(box.root, 'gate-http');
    const run = jw([
      'submit',
      '--steps',
      gatedStep(gate, 'http-first', 'http-second'),
      'exit 4',
      '--jobs-dir',
      jobsDir,
      '--via',
      backend.url,
      '--follow',
    ]);
    await run.waitForOutput('http-first', 60_000);
    expect(run.stdout).not.toContain('http-second');
    const workers = await jwDone(['workers', '--via', backend.url, '--json']);
    expect(JSON.parse(workers.stdout)).toEqual([
      expect.objectContaining({ workerId: 'agent-1', status: 'online' }),
    ]);
    await writeFile(gate, '');
    const { code } = await run.exited;
    expect(code, run.stderr).toBe(4);
    expect(run.stdout).toBe('http-first\nhttp-second\n');

    const follower = jw([
      'submit',
      '--steps',
      'echo http-sleeping; sleep 300',
      '--id',
      'http-long',
      '--jobs-dir',
      jobsDir,
      '--via',
      backend.url,
      '--follow',
    ]);
    await follower.waitForOutput('http-sleeping', 60_000);
    expect((await jwDone(['cancel', 'http-long', '--via', backend.url])).code).toBe(0);
    const ended = await follower.exited;
    expect(ended.code).not.toBe(0);
    expect(follower.stderr).toMatch(/http-long cancelled/);
    expect(backend.queue.get('http-long')?.status).toBe('canceled');
  });
});
