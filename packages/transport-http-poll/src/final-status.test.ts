import { mkdir, readdir, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { createWorker, silentLogger } from '@jw/core';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { type FaultyHttpServer, startFaultyHttpServer } from '@jw/testing/http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BackendHandler, type BackendRequest, createBackendHandler } from './backend/index.js';
import { InFlight } from './in-flight.js';
import { createHttpPollTransport } from './index.js';
import { fileNameOf } from './status-outbox.js';

let server: FaultyHttpServer;
let backend: BackendHandler;
let requests: BackendRequest[];
let sandbox: Sandbox;
let stateDir: string;
/** The state dir's in-flight notes as each job-status call arrived. */
let notesAtStatus: string[][];

beforeAll(async () => {
  server = await startFaultyHttpServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/api/agent/job-status') {
      const names = await readdir(stateDir).catch(() => [] as string[]);
      notesAtStatus.push(names.filter((n) => n.endsWith('.active')));
    }
    backend(req, res);
  });
});
afterAll(() => server.stop());
beforeEach(async () => {
  backend = createBackendHandler();
  requests = [];
  notesAtStatus = [];
  backend.events.on('request', (r) => requests.push(r));
  sandbox = await createSandbox('jw-final-status-');
  stateDir = path.join(sandbox.root, 'state');
});
afterEach(() => sandbox.cleanup());

function agent(maxJobs: number) {
  const transport = createHttpPollTransport({
    server: server.url,
    sharedDir: sandbox.root,
    stateDir,
    pollIntervalMs: 50,
    heartbeatIntervalMs: 0,
    statusPollIntervalMs: 0,
    requestTimeoutMs: 30_000,
    retryMaxMs: 200,
  });
  const worker = createWorker({
    transport,
    jobsDir: transport.jobsDir,
    workspacesDir: sandbox.workspacesDir,
    workerId: 'w1',
    maxJobs,
    logger: silentLogger,
  });
  return { worker, run: worker.run() };
}

const finalPosts = (jobId: string) =>
  requests.filter(
    (r) =>
      r.path === '/api/agent/job-status' &&
      (r.body as { job_id: string; status: string }).job_id === jobId &&
      (r.body as { status: string }).status !== 'running',
  );

describe('the final status is sent once', () => {
  it("drops the job's in-flight note before sending, so a kill after the send resends nothing", async () => {
    backend.queue.submit({ job_id: 'once', command: 'true' });
    const { run } = agent(1);
    await run;
    expect(finalPosts('once')).toHaveLength(1);
    // The last call is the final status: by then the note that would resend it was gone.
    expect(notesAtStatus.at(-1)).toEqual([]);
  });

  it('settles in-flight notes against the stored statuses before sending any', async () => {
    // What a kill between storing a final status and dropping the note leaves: both.
    await mkdir(stateDir);
    const notes = new InFlight(stateDir, silentLogger);
    // Many notes of unfinished jobs (read first, by name) give a premature send time to run.
    for (let i = 0; i < 300; i++) await notes.add(`a${i}`, path.join(sandbox.jobsDir, `a${i}`));
    const jobDir = await sandbox.makeJob('zz-ended');
    await mkdir(path.join(jobDir, 'results'));
    await writeFile(
      path.join(jobDir, 'results', 'result.json'),
      JSON.stringify({ jobId: 'zz-ended', status: 'success', exitCode: 0 }),
    );
    await notes.add('zz-ended', jobDir);
    const report = { job_id: 'zz-ended', status: 'finished', worker_id: 'w1', exit_code: 0 };
    await writeFile(path.join(stateDir, `${fileNameOf('zz-ended')}.json`), JSON.stringify(report));
    backend.queue.submit({ job_id: 'zz-ended', command: 'true' });
    backend.queue.take('w1');

    const { worker, run } = agent(0);
    await backend.queue.waitForStatus('zz-ended', 'finished');
    await waitFor(async () => (await readdir(stateDir)).length === 0);
    await worker.stop();
    await run;
    expect(finalPosts('zz-ended')).toHaveLength(1);
  });
});
