import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { createWorker, readManifest, silentLogger } from '@jw/core';
import { createSandbox, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import { type FaultyHttpServer, startFaultyHttpServer } from '@jw/testing/http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BackendHandler, type BackendRequest, createBackendHandler } from './backend/index.js';
import { InFlight } from './in-flight.js';
import { createHttpPollTransport, type HttpPollTransportOptions } from './index.js';

let server: FaultyHttpServer;
let backend: BackendHandler;
let requests: BackendRequest[];
let sandbox: Sandbox;

beforeAll(async () => {
  // One server per file; each test gets a fresh backend behind it.
  server = await startFaultyHttpServer((req: IncomingMessage, res: ServerResponse) =>
    backend(req, res),
  );
});
afterAll(() => server.stop());

beforeEach(async () => {
  backend = createBackendHandler();
  requests = [];
  backend.events.on('request', (r) => requests.push(r));
  server.fault = undefined;
  sandbox = await createSandbox('jw-http-poll-');
});
const started: { worker: { stop(): Promise<void> }; run: Promise<unknown> }[] = [];
afterEach(async () => {
  // A test that failed half-way must not leave an agent polling the next test's backend.
  await Promise.all(
    started.splice(0).map((a) => a.worker.stop().then(() => a.run.catch(() => {}))),
  );
  await sandbox.cleanup();
});

function agent(
  workerId = 'w1',
  maxJobs = 1,
  options: Partial<HttpPollTransportOptions> = {},
  concurrency = 1,
) {
  const transport = createHttpPollTransport({
    server: server.url,
    sharedDir: sandbox.root,
    stateDir: path.join(sandbox.root, `state-${workerId}`),
    pollIntervalMs: 50,
    heartbeatIntervalMs: 150,
    statusPollIntervalMs: 100,
    // Generous: on a busy machine a slow answer must not become a retry (a second report).
    requestTimeoutMs: 30_000,
    retryMaxMs: 200,
    version: '9.9.9',
    ...options,
  });
  const worker = createWorker({
    transport,
    jobsDir: transport.jobsDir,
    workspacesDir: sandbox.workspacesDir,
    workerId,
    maxJobs,
    concurrency,
    killGraceMs: 1_000,
    logger: silentLogger,
  });
  const started1 = { transport, worker, run: worker.run() };
  started.push(started1);
  return started1;
}

const combinedLog = (id: string) =>
  readFile(path.join(sandbox.jobsDir, id, 'logs', `${id}.log`), 'utf8');
const statusPosts = () =>
  requests
    .filter((r) => r.path === '/api/agent/job-status')
    .map((r) => r.body as Record<string, unknown>);

describe('http-poll transport against the reference backend', () => {
  it('runs a job and speaks the protocol in order', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({
      job_id: 'happy',
      config_path: 'cfg.json',
      command: `echo hello; ${go.wait}; echo bye >&2`,
    });
    const { run } = agent();
    // The job runs until a heartbeat and a status poll were seen during it.
    await waitFor(
      () =>
        requests.some((r) => r.path === '/status/happy') &&
        requests.some(
          (r) =>
            r.path === '/api/agent/heartbeat' &&
            (r.body as { info: { active_jobs: string[] } }).info.active_jobs.includes('happy'),
        ),
    );
    await go.open();
    const summary = await run;
    expect(summary).toMatchObject({ handled: 1, reason: 'max-jobs' });

    const calls = requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    const firstJob = calls.indexOf('POST /api/agent/next-job 200');
    const posts = requests.filter((r) => r.path === '/api/agent/job-status');
    const running = requests.indexOf(posts[0]!);
    const finished = requests.indexOf(posts.at(-1)!);
    expect(firstJob).toBeGreaterThanOrEqual(0);
    expect(calls.slice(0, firstJob).every((c) => /next-job 204|heartbeat 200/.test(c))).toBe(true);
    expect(running).toBeGreaterThan(firstJob);
    expect(posts[0]!.body).toEqual({ job_id: 'happy', status: 'running', worker_id: 'w1' });
    expect(
      posts.slice(0, -1).every((p) => (p.body as { status: string }).status === 'running'),
    ).toBe(true);
    expect(posts.at(-1)!.body).toEqual({
      job_id: 'happy',
      status: 'finished',
      worker_id: 'w1',
      exit_code: 0,
    });
    const during = requests.slice(running, finished);
    expect(during.filter((r) => r.path === '/api/agent/heartbeat').length).toBeGreaterThan(0);
    expect(during.filter((r) => r.path === '/status/happy').length).toBeGreaterThan(0);
    // Only one next-job while the single slot was busy: none between running and finished.
    expect(during.filter((r) => r.path === '/api/agent/next-job')).toEqual([]);

    const beat = during.find((r) => r.path === '/api/agent/heartbeat')!.body as {
      info: Record<string, unknown>;
    };
    expect(beat.info).toMatchObject({ active_jobs: ['happy'], version: '9.9.9', state: 'busy' });
    const lastBeat = requests.filter((r) => r.path === '/api/agent/heartbeat').at(-1)!.body as {
      info: Record<string, unknown>;
    };
    expect(lastBeat.info).toMatchObject({
      active_jobs: [],
      last_job_id: 'happy',
      last_job_status: 'finished',
    });

    expect(backend.queue.get('happy')).toMatchObject({ status: 'finished', exit_code: 0 });
    expect(await combinedLog('happy')).toBe('hello\nbye\n');
    expect(await sandbox.readResult('happy')).toMatchObject({
      status: 'success',
      worker: { transport: 'http-poll' },
    });
    expect(await readdir(path.join(sandbox.root, 'state-w1'))).toEqual([]);
  });

  it('reports a failing job with its exit code and error', async () => {
    backend.queue.submit({ job_id: 'bad', command: 'echo oops >&2; exit 3' });
    await agent().run;
    expect(backend.queue.get('bad')).toMatchObject({ status: 'failed', exit_code: 3 });
    expect(statusPosts().at(-1)).toMatchObject({
      status: 'failed',
      exit_code: 3,
      error: expect.any(String),
    });
    expect(await combinedLog('bad')).toBe('oops\n');
  });

  it("runs the job dir's job.json when there is no command, logging every step", async () => {
    await sandbox.makeJob('fromjson', { steps: ['echo one', 'echo two'] });
    backend.queue.submit({ job_id: 'fromjson', config_path: 'x' });
    await agent().run;
    expect(backend.queue.get('fromjson')?.status).toBe('finished');
    expect(await combinedLog('fromjson')).toBe('one\ntwo\n');
  });

  it('copies a large step log into the combined log byte for byte', async () => {
    // About 3 MB in many writes, more than the copy buffer many times over.
    backend.queue.submit({
      job_id: 'big',
      command:
        'for i in $(seq 1 40000); do echo "line $i of a long log with some padding text to fill it up .........."; done',
    });
    await agent().run;
    const step = await readFile(path.join(sandbox.jobsDir, 'big', 'results', 'step_0.log'));
    const combined = await readFile(path.join(sandbox.jobsDir, 'big', 'logs', 'big.log'));
    expect(step.length).toBeGreaterThan(2_500_000);
    expect(combined.equals(step)).toBe(true);
  });

  it('reports a job without command, template or job dir as failed', async () => {
    backend.queue.submit({ job_id: 'nodir' });
    await agent().run;
    expect(backend.queue.get('nodir')).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/does not exist/),
    });
  });

  it('fills the command template with quoted values', async () => {
    backend.queue.submit({ job_id: 'tpl', job_name: "it's mine", config_path: 'cfg/a.json' });
    await agent('w1', 1, {
      commandTemplate: 'printf "%s|" {job_id} {job_name} {config_path} {shared_dir}',
    }).run;
    expect(await combinedLog('tpl')).toBe(`tpl|it's mine|cfg/a.json|${sandbox.root}|`);
  });

  it.each([
    ['stop_requested', 'stopped', 'requestStop'],
    ['canceled', 'canceled', 'cancel'],
  ] as const)('ends a running job on %s and reports %s', async (_word, reported, method) => {
    const id = `end-${method}`;
    backend.queue.submit({ job_id: id, command: 'echo started; sleep 30' });
    const { run } = agent();
    // The step is running once its first output reached the combined log.
    await waitFor(async () => (await combinedLog(id)) === 'started\n');
    backend.queue[method](id);
    await backend.queue.waitForStatus(id, reported);
    const started = Date.now();
    await run;
    // Ended by the stop, not by the step's 30 s (generous for a busy machine).
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(backend.queue.get(id)?.exit_code).not.toBe(0);
    expect((await sandbox.readResult(id)).status).toBe('cancelled');
  });

  it('survives 5xx, 408, 429, garbage, a missing job_id, time-outs and dropped connections', async () => {
    const faults = [
      { status: 500 },
      { status: 503, body: '<html>down</html>' },
      { status: 408 },
      { status: 429 },
      { status: 200, body: 'not json', contentType: 'application/json' },
      { status: 200, body: '{"config_path": "c"}', contentType: 'application/json' },
      { status: 200, body: '[1, 2]', contentType: 'application/json' },
      { hang: true as const },
      { destroy: true as const },
    ];
    let n = 0;
    server.fault = (req) => (req.url === '/api/agent/next-job' ? faults[n++] : undefined);
    // The hanging answer must time out; the limit is still far above a normal answer.
    const { run } = agent('w1', 1, { requestTimeoutMs: 2_000 });
    // After the faults it only sees 204s for a while, then a job.
    await waitFor(
      () =>
        requests.filter((r) => r.path === '/api/agent/next-job' && r.status === 204).length >= 3,
    );
    expect(server.faulted).toHaveLength(faults.length);
    backend.queue.submit({ job_id: 'after-faults', command: 'echo ok' });
    expect(await run).toMatchObject({ handled: 1 });
    expect(backend.queue.get('after-faults')?.status).toBe('finished');
  });

  it('reports invalid job payloads that have an id as failed and goes on', async () => {
    const bodies = [
      { job_id: '../escape', config_path: 'c' },
      { job_id: 'badenv', config_path: 'c', env: 'A=1' },
      { job_id: 'badcmd', command: 7 },
    ];
    server.fault = (req) => {
      const body = req.url === '/api/agent/next-job' ? bodies.shift() : undefined;
      return body && { status: 200, body: JSON.stringify(body), contentType: 'application/json' };
    };
    backend.queue.submit({ job_id: 'good', command: 'true' });
    const { run } = agent('w1', 1, { commandTemplate: 'echo {config_path}' });
    await run;
    const reports = statusPosts();
    expect(reports.slice(0, 3)).toEqual([
      expect.objectContaining({
        job_id: '../escape',
        status: 'failed',
        error: expect.stringMatching(/not a valid job id/),
      }),
      expect.objectContaining({
        job_id: 'badenv',
        status: 'failed',
        error: expect.stringMatching(/env/),
      }),
      expect.objectContaining({
        job_id: 'badcmd',
        status: 'failed',
        error: expect.stringMatching(/command/),
      }),
    ]);
    expect(backend.queue.get('good')?.status).toBe('finished');
    // The backend answered 404 (it never handed those out): nothing is kept to retry.
    expect(await readdir(path.join(sandbox.root, 'state-w1'))).toEqual([]);
  });

  it('delivers a final status once the backend is back', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'offline', command: `${go.wait}; echo done` });
    const { worker, run } = agent('w1', 0);
    await backend.queue.waitForStatus('offline', 'running');
    await server.stop();
    await go.open();
    const stateDir = path.join(sandbox.root, 'state-w1');
    // The final status waits in the outbox; the job's in-flight note is gone.
    await waitFor(async () => {
      const names = await readdir(stateDir);
      return names.length === 1 && names[0]!.endsWith('.json');
    });
    expect((await readManifest(path.join(sandbox.jobsDir, 'offline')))?.status).toBe('success');
    await server.start();
    await backend.queue.waitForStatus('offline', 'finished');
    await waitFor(async () => (await readdir(stateDir)).length === 0);
    await worker.stop();
    await run;
  });

  it('keeps an undelivered final status across a restart of the agent', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'restart', command: go.wait });
    const first = agent('w1', 1);
    await backend.queue.waitForStatus('restart', 'running');
    await server.stop();
    await go.open();
    await first.run;
    const stateDir = path.join(sandbox.root, 'state-w1');
    expect(await readdir(stateDir)).toEqual([expect.stringMatching(/^[\w-]+\.json$/)]);
    await server.start();
    expect(backend.queue.get('restart')?.status).toBe('running');
    const second = agent('w1', 0);
    await backend.queue.waitForStatus('restart', 'finished');
    expect(backend.queue.get('restart')?.exit_code).toBe(0);
    await second.worker.stop();
    await second.run;
  });

  it('sends the final status of a job that ended just before the agent was killed', async () => {
    // What a kill between the final result.json and the outbox leaves: the job's
    // in-flight note in the state dir, a final manifest, no stored status.
    backend.queue.submit({ job_id: 'gap', command: 'exit 4' });
    backend.queue.take('w1');
    backend.queue.report({ job_id: 'gap', status: 'running', worker_id: 'w1' });
    const stateDir = path.join(sandbox.root, 'state-w1');
    const jobDir = await sandbox.makeJob('gap');
    await mkdir(path.join(jobDir, 'results'));
    await writeFile(
      path.join(jobDir, 'results', 'result.json'),
      JSON.stringify({ jobId: 'gap', status: 'failed', exitCode: 4, error: 'step 0 failed' }),
    );
    await mkdir(stateDir);
    await new InFlight(stateDir, silentLogger).add('gap', jobDir);
    // A still-running job's note is dropped: the backend hands that job out again.
    await new InFlight(stateDir, silentLogger).add('unfinished', path.join(sandbox.jobsDir, 'x'));

    const { worker, run } = agent('w1', 0);
    expect(await backend.queue.waitForStatus('gap', 'failed')).toMatchObject({
      worker_id: 'w1',
      exit_code: 4,
      error: 'step 0 failed',
    });
    await waitFor(async () => (await readdir(stateDir)).length === 0);
    await worker.stop();
    await run;
  });

  it('finishes the running job, then ends, when drained', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'drain1', command: go.wait });
    backend.queue.submit({ job_id: 'drain2', command: 'true' });
    const { transport, run } = agent('w1', 0);
    await backend.queue.waitForStatus('drain1', 'running');
    transport.drain();
    await go.open();
    expect(await run).toMatchObject({ handled: 1, reason: 'ended' });
    expect(backend.queue.get('drain1')?.status).toBe('finished');
    expect(backend.queue.get('drain2')?.status).toBe('queued');
  });

  it('two agents never run the same job, even when the backend hands it out twice', async () => {
    for (let i = 0; i < 6; i++) {
      backend.queue.submit({
        job_id: `many${i}`,
        command: 'echo "$JW_JOB_ID" >> ../../ran.txt; sleep 0.1',
      });
    }
    // A backend bug: the same job to both agents first.
    let twice = 2;
    await sandbox.makeJob('dup');
    backend.queue.submit({ job_id: 'dup', command: 'x' });
    const dupBody = JSON.stringify({
      job_id: 'dup',
      command: `echo dup >> ${sandbox.root}/dup.txt; sleep 0.5`,
    });
    server.fault = (req) =>
      req.url === '/api/agent/next-job' && twice-- > 0 ? { status: 200, body: dupBody } : undefined;
    const a = agent('wa', 0);
    const b = agent('wb', 0);
    await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => backend.queue.waitForStatus(`many${i}`, 'finished')),
    );
    await backend.queue.waitForStatus('dup', 'finished');
    await Promise.all([a.worker.stop(), b.worker.stop()]);
    await Promise.all([a.run, b.run]);
    expect(await readFile(path.join(sandbox.root, 'dup.txt'), 'utf8')).toBe('dup\n');
    for (let i = 0; i < 6; i++) {
      const record = backend.queue.get(`many${i}`)!;
      expect(record.history.filter((h) => h.status === 'dispatched')).toHaveLength(1);
      expect((await sandbox.readResult(`many${i}`)).attempt).toBe(1);
    }
  });

  it('runs jobs side by side with concurrency 2 and lists both in heartbeats', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'left', command: go.wait });
    backend.queue.submit({ job_id: 'right', command: go.wait });
    const { run } = agent('w1', 2, {}, 2);
    // Both run until a heartbeat listed the two of them.
    await waitFor(() =>
      requests.some(
        (r) =>
          r.path === '/api/agent/heartbeat' &&
          (r.body as { info: { active_jobs: string[] } }).info.active_jobs.length === 2,
      ),
    );
    await go.open();
    await run;
    const words = statusPosts().map((p) => `${p.job_id}:${p.status}`);
    const firstFinish = words.findIndex((w) => w.endsWith(':finished'));
    expect(words.slice(0, firstFinish)).toEqual(
      expect.arrayContaining(['left:running', 'right:running']),
    );
    const beats = requests
      .filter((r) => r.path === '/api/agent/heartbeat')
      .map((r) => (r.body as { info: { active_jobs: string[] } }).info.active_jobs);
    expect(beats.some((active) => active.length === 2)).toBe(true);
    expect(backend.queue.get('left')?.status).toBe('finished');
    expect(backend.queue.get('right')?.status).toBe('finished');
  });

  it('sends no heartbeat and no status poll when both intervals are 0', async () => {
    backend.queue.submit({ job_id: 'quiet', command: 'sleep 0.3' });
    await agent('w1', 1, { heartbeatIntervalMs: 0, statusPollIntervalMs: 0 }).run;
    expect(requests.map((r) => r.path)).not.toContain('/api/agent/heartbeat');
    expect(requests.map((r) => r.path)).not.toContain('/status/quiet');
    expect(statusPosts().map((p) => p.status)).toEqual(['running', 'finished']);
  });

  it('sends the bearer token on every call', async () => {
    backend = createBackendHandler({ token: 's3cret' });
    backend.events.on('request', (r) => requests.push(r));
    backend.queue.submit({ job_id: 'auth', command: 'true' });
    await agent('w1', 1, { token: 's3cret' }).run;
    expect(backend.queue.get('auth')?.status).toBe('finished');
    expect(requests.every((r) => r.status !== 401)).toBe(true);
  });
});
