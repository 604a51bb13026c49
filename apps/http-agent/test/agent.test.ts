import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import { type FaultyHttpServer, startFaultyHttpServer } from '@jw/testing/http';
import { pidAlive, type Spawned, spawnProcess } from '@jw/testing/process';
import {
  type BackendHandler,
  type BackendRequest,
  createBackendHandler,
} from '@jw/transport-http-poll/backend';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/main.cjs');

let server: FaultyHttpServer;
let backend: BackendHandler;
let requests: BackendRequest[];
let sandbox: Sandbox;
const agents: Spawned[] = [];

beforeAll(async () => {
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
  sandbox = await createSandbox('jw-http-agent-');
});
afterEach(async () => {
  for (const agent of agents.splice(0)) {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.kill('SIGKILL');
    await agent.exited;
  }
  await sandbox.cleanup();
});

/** The runner's env without the agent's settings, so only what a test gives reaches it. */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const ours = /^(OPEVA_|AGENT_|WORKER_|POLL_INTERVAL|STATUS_POLL_INTERVAL|LOG_)/;
  for (const [k, v] of Object.entries(process.env)) if (!ours.test(k)) env[k] = v;
  return { ...env, LOG_FORMAT: 'json', ...extra };
}

/** Starts the built agent with the three settings a user must give, plus fast timers. */
function startAgent(
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  workerId = 'agent-1',
): Spawned {
  const agent = spawnProcess(process.execPath, [BIN, ...args], {
    cwd: sandbox.root,
    env: cleanEnv({
      OPEVA_SERVER: server.url,
      WORKER_ID: workerId,
      OPEVA_SHARED_DIR: sandbox.root,
      POLL_INTERVAL: '0.1',
      WORKER_HEARTBEAT_INTERVAL: '0.2',
      STATUS_POLL_INTERVAL: '0.1',
      AGENT_MAX_BACKOFF: '0.3',
      AGENT_KILL_GRACE: '1',
      ...env,
    }),
  });
  agents.push(agent);
  return agent;
}

/** Alive and not a zombie: this container's init does not reap orphans. */
async function running(pid: number): Promise<boolean> {
  if (!pidAlive(pid)) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) Z /.test(stat);
}

/** Every `*.tmp` file below `dir`, as paths relative to it. */
async function tempFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((e) => e.endsWith('.tmp')).sort();
}

const combinedLog = (id: string) =>
  readFile(path.join(sandbox.jobsDir, id, 'logs', `${id}.log`), 'utf8');

describe('http-agent binary', () => {
  it('works with only OPEVA_SERVER, WORKER_ID and OPEVA_SHARED_DIR', async () => {
    backend.queue.submit({
      job_id: 'plain',
      job_name: 'plain job',
      command: 'echo "$JW_JOB_NAME"',
    });
    const agent = spawnProcess(process.execPath, [BIN], {
      cwd: sandbox.root,
      env: cleanEnv({
        OPEVA_SERVER: server.url,
        WORKER_ID: 'only-three',
        OPEVA_SHARED_DIR: sandbox.root,
      }),
    });
    agents.push(agent);
    const record = await backend.queue.waitForStatus('plain', 'finished');
    expect(record).toMatchObject({ worker_id: 'only-three', exit_code: 0 });
    expect(await combinedLog('plain')).toBe('plain job\n');
    // Long-running by default: still polling after the job.
    const polls = requests.filter((r) => r.path === '/api/agent/next-job').length;
    await waitFor(
      () => requests.filter((r) => r.path === '/api/agent/next-job').length > polls,
      10_000,
    );
    agent.kill('SIGTERM');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
  });

  it('speaks the protocol in order: next-job, running, heartbeats, finished', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'seq', config_path: 'c.json', command: `echo hi; ${go.wait}` });
    const agent = startAgent(['--exit-after-job']);
    // The job runs until the backend saw a heartbeat and a status poll during it.
    await backend.queue.waitForStatus('seq', 'running');
    const running = requests.length;
    await waitFor(
      () =>
        requests.slice(running).some((r) => r.path === '/api/agent/heartbeat') &&
        requests.some((r) => r.path === '/status/seq'),
    );
    await go.open();
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const flow = requests
      .filter((r) => r.path !== `/status/seq`)
      .map((r) =>
        r.path === '/api/agent/job-status'
          ? `status:${(r.body as { status: string }).status}`
          : r.path === '/api/agent/next-job'
            ? `next:${r.status}`
            : 'beat',
      );
    // Collapse repeats so the shape can be compared exactly.
    const shape = flow.filter((step, i) => step !== flow[i - 1]);
    // Heartbeats have their own timer: on a busy machine one may land before `running`.
    const taken = shape.indexOf('next:200');
    const firstRunning = shape.indexOf('status:running');
    expect(firstRunning).toBeGreaterThan(taken);
    expect(shape.slice(taken + 1, firstRunning).every((s) => s === 'beat')).toBe(true);
    expect([...shape.slice(taken, taken + 1), ...shape.slice(firstRunning)]).toEqual([
      'next:200',
      'status:running',
      ...shape.slice(shape.indexOf('status:running') + 1, shape.indexOf('status:finished')),
      'status:finished',
      'beat',
    ]);
    const during = shape.slice(
      shape.indexOf('status:running') + 1,
      shape.indexOf('status:finished'),
    );
    expect(during).toContain('beat');
    expect(during.every((s) => s === 'beat' || s === 'status:running')).toBe(true);
    expect(requests.some((r) => r.path === '/status/seq')).toBe(true);
    expect(requests.filter((r) => r.path === '/api/agent/job-status').at(-1)?.body).toEqual({
      job_id: 'seq',
      status: 'finished',
      worker_id: 'agent-1',
      exit_code: 0,
    });
    expect(await combinedLog('seq')).toBe('hi\n');
    expect(await sandbox.readResult('seq')).toMatchObject({ status: 'success' });
  });

  it('reports a failing job as failed with its exit code', async () => {
    backend.queue.submit({ job_id: 'fails', command: 'echo broken >&2; exit 7' });
    const agent = startAgent(['--exit-after-job']);
    expect((await agent.exited).code).toBe(0);
    expect(backend.queue.get('fails')).toMatchObject({
      status: 'failed',
      exit_code: 7,
      error: expect.stringMatching(/code 7/),
    });
    expect(await combinedLog('fails')).toBe('broken\n');
  });

  it.each([
    ['stop_requested', 'stopped', 'requestStop'],
    ['canceled', 'canceled', 'cancel'],
  ] as const)(
    'stops the job on %s, reports %s, and no step process survives',
    async (_w, reported, method) => {
      const id = `kill-${method}`;
      backend.queue.submit({
        job_id: id,
        // The shell ignores SIGTERM, so the SIGKILL after the grace period must follow.
        command: `trap "" TERM; echo $$ > ${sandbox.root}/${id}.pid; sleep 60 & echo $! > ${sandbox.root}/${id}.child; wait`,
      });
      const agent = startAgent(['--exit-after-job', '--kill-grace', '1']);
      const pids = await waitFor(async () => {
        const read = (f: string) =>
          readFile(path.join(sandbox.root, f), 'utf8').then((t) => Number(t.trim()));
        const both = [await read(`${id}.pid`), await read(`${id}.child`)];
        return both.every((p) => p > 0) ? both : undefined;
      });
      for (const pid of pids) expect(await running(pid)).toBe(true);
      const asked = Date.now();
      backend.queue[method](id);
      const record = await backend.queue.waitForStatus(id, reported);
      // Status poll (0.1 s) + kill grace (1 s), not the step's 60 s; generous for a busy machine.
      expect(Date.now() - asked).toBeLessThan(20_000);
      expect(record.exit_code).not.toBe(0);
      for (const pid of pids) expect(await running(pid)).toBe(false);
      expect((await agent.exited).code).toBe(0);
    },
  );

  it('rides out 500s, garbage, time-outs and 204s, then runs the job', async () => {
    const faults = [
      { status: 500 },
      { status: 502, body: 'Bad Gateway' },
      { status: 200, body: '<html>not json</html>' },
      { status: 200, body: '{"no_job_id": true}' },
      { status: 429 },
      { hang: true as const },
      { destroy: true as const },
    ];
    server.fault = (req) => (req.url === '/api/agent/next-job' ? faults.shift() : undefined);
    // The hanging answer must time out; 2 s is still far above a normal answer.
    const agent = startAgent(['--exit-after-job', '--request-timeout', '2']);
    await waitFor(
      () =>
        requests.filter((r) => r.path === '/api/agent/next-job' && r.status === 204).length >= 5,
    );
    expect(faults).toEqual([]);
    backend.queue.submit({ job_id: 'recovered', command: 'echo ok' });
    expect((await agent.exited).code).toBe(0);
    expect(backend.queue.get('recovered')?.status).toBe('finished');
  });

  it('delivers the final status after the backend comes back, across an agent restart', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'outage', command: `${go.wait}; echo finished-offline` });
    const first = startAgent(['--exit-after-job']);
    await backend.queue.waitForStatus('outage', 'running');
    await server.stop();
    await go.open();
    // The job ends while the backend is away; the agent keeps the status on disk and exits.
    expect((await first.exited).code).toBe(0);
    const stateDir = path.join(sandbox.workspacesDir, '.http-agent', 'agent-1');
    expect(await readdir(stateDir)).toHaveLength(1);
    await server.start();
    expect(backend.queue.get('outage')?.status).toBe('running');
    const second = startAgent();
    expect(await backend.queue.waitForStatus('outage', 'finished')).toMatchObject({ exit_code: 0 });
    await waitFor(async () => (await readdir(stateDir)).length === 0);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('a final status the backend could not take survives a kill -9 of the agent', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'durable', command: `echo work; ${go.wait}` });
    const first = startAgent();
    await backend.queue.waitForStatus('durable', 'running');
    await server.stop();
    await go.open();
    // The job ends while the backend is away: its final status waits in the state dir.
    const stateDir = path.join(sandbox.workspacesDir, '.http-agent', 'agent-1');
    await waitFor(async () => (await readdir(stateDir)).some((n) => n.endsWith('.json')));
    expect((await sandbox.readResult('durable')).status).toBe('success');
    first.kill('SIGKILL');
    await first.exited;

    await server.start();
    expect(backend.queue.get('durable')?.status).toBe('running');
    const second = startAgent();
    expect(await backend.queue.waitForStatus('durable', 'finished')).toMatchObject({
      worker_id: 'agent-1',
      exit_code: 0,
    });
    await waitFor(async () => (await readdir(stateDir)).length === 0);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(await tempFiles(sandbox.root)).toEqual([]);
  });

  it('leaves no temporary file after a kill -9 mid-job and a restart', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'litter', command: `echo begin; ${go.wait}` });
    const first = startAgent();
    await waitFor(async () => (await combinedLog('litter').catch(() => '')) === 'begin\n');
    // What a kill in the middle of an atomic write of the state dir leaves behind.
    const stateDir = path.join(sandbox.workspacesDir, '.http-agent', 'agent-1');
    await writeFile(path.join(stateDir, '.bGl0dGVy.json.0123456789ab.tmp'), '{"job_id":"lit');
    first.kill('SIGKILL');
    await first.exited;
    const seen = requests.length;
    const second = startAgent();
    await second.waitForOutput('removed temporary files of an interrupted run', 20_000);
    // The first agent's polls do not count: the second one is idle once it has polled.
    await waitFor(() => requests.slice(seen).some((r) => r.path === '/api/agent/next-job'));
    expect(await tempFiles(sandbox.root)).toEqual([]);
    second.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    await go.open();
  });

  it('a job of a killed agent runs again on another one once the backend takes it for stale', async () => {
    backend = createBackendHandler({ staleAfterMs: 1_000 });
    backend.events.on('request', (r) => requests.push(r));
    const pids = path.join(sandbox.root, 'pids');
    const go = gate(sandbox.root);
    backend.queue.submit({
      job_id: 'orphan',
      command: `echo $$ >> ${pids}; ${go.wait}; echo done`,
    });
    const doomed = startAgent([], {}, 'agent-doomed');
    await waitFor(async () => (await readFile(pids, 'utf8').catch(() => '')).length > 0);
    doomed.kill('SIGKILL');
    await doomed.exited;
    await go.open();
    const rescuer = startAgent([], {}, 'agent-rescuer');
    const record = await backend.queue.waitForStatus('orphan', 'finished');
    expect(record.worker_id).toBe('agent-rescuer');
    expect(record.history.map((h) => h.status)).toContain('queued');
    // Same host, dead pid: the old claim counts as expired, so this is attempt 2.
    expect((await sandbox.readResult('orphan')).attempt).toBe(2);
    rescuer.kill('SIGTERM');
    expect((await rescuer.exited).code).toBe(0);
    // What the killed agent left running is ours to end.
    for (const pid of (await readFile(pids, 'utf8')).trim().split('\n').map(Number)) {
      if (await running(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('exits after one job with --exit-after-job, leaving the rest queued', async () => {
    backend.queue.submit({ job_id: 'one', command: 'true' });
    backend.queue.submit({ job_id: 'two', command: 'true' });
    const agent = startAgent(['--exit-after-job']);
    expect((await agent.exited).code).toBe(0);
    expect(backend.queue.get('one')?.status).toBe('finished');
    expect(backend.queue.get('two')?.status).toBe('queued');
  });

  it('on SIGUSR1 finishes the running job, then exits', async () => {
    const go = gate(sandbox.root);
    backend.queue.submit({ job_id: 'usr1', command: `echo begin; ${go.wait}; echo end` });
    backend.queue.submit({ job_id: 'usr1-next', command: 'true' });
    const agent = startAgent();
    await waitFor(async () => (await combinedLog('usr1').catch(() => '')) === 'begin\n');
    agent.kill('SIGUSR1');
    await agent.waitForOutput('"signal":"SIGUSR1"');
    await go.open();
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    expect(backend.queue.get('usr1')?.status).toBe('finished');
    expect(await combinedLog('usr1')).toBe('begin\nend\n');
    expect(backend.queue.get('usr1-next')?.status).toBe('queued');
  });

  it('on SIGUSR1 while idle exits at once', async () => {
    const agent = startAgent();
    await waitFor(() => requests.some((r) => r.path === '/api/agent/next-job'));
    agent.kill('SIGUSR1');
    expect(await agent.exited).toEqual({ code: 0, signal: null });
  });

  it('two agents on one backend never run the same job, even one handed out twice', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `shared${i}`);
    const ran = path.join(sandbox.root, 'ran.txt');
    for (const id of ids) {
      backend.queue.submit({ job_id: id, command: `echo ${id} >> ${ran}; sleep 0.1` });
    }
    // A backend bug: the first poll of each agent gets the same job.
    backend.queue.submit({ job_id: 'twice', command: 'x' });
    const twice = JSON.stringify({ job_id: 'twice', command: `echo twice >> ${ran}; sleep 0.5` });
    let duplicates = 2;
    server.fault = (req) =>
      req.url === '/api/agent/next-job' && duplicates-- > 0
        ? { status: 200, body: twice, contentType: 'application/json' }
        : undefined;
    const a = startAgent([], {}, 'agent-a');
    const b = startAgent([], {}, 'agent-b');
    const records = await Promise.all(ids.map((id) => backend.queue.waitForStatus(id, 'finished')));
    await waitFor(async () => (await readFile(ran, 'utf8')).includes('twice'));
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
    const lines = (await readFile(ran, 'utf8')).trim().split('\n');
    expect(lines.sort()).toEqual([...ids, 'twice'].sort());
    for (const r of records)
      expect(r.history.filter((h) => h.status === 'dispatched')).toHaveLength(1);
    expect(await sandbox.readResult('twice')).toMatchObject({ status: 'success', attempt: 1 });
  });

  it('sends the token and keeps it from steps', async () => {
    backend = createBackendHandler({ token: 'tok-123' });
    backend.events.on('request', (r) => requests.push(r));
    backend.queue.submit({ job_id: 'secret', command: 'echo "token=[$AGENT_TOKEN]"' });
    const agent = startAgent(['--exit-after-job'], { AGENT_TOKEN: 'tok-123' });
    expect((await agent.exited).code).toBe(0);
    expect(requests.every((r) => r.status !== 401)).toBe(true);
    expect(await combinedLog('secret')).toBe('token=[]\n');
  });

  it('exits 2 on bad settings', async () => {
    const badUrl = startAgent(['--server', 'ftp://nowhere']);
    expect((await badUrl.exited).code).toBe(2);
    const noShare = startAgent([], { OPEVA_SHARED_DIR: path.join(sandbox.root, 'not-mounted') });
    expect((await noShare.exited).code).toBe(2);
    expect(noShare.stderr).toMatch(/shared dir/);
  });

  it('documents every option in --help', async () => {
    const help = startAgent(['--help']);
    expect((await help.exited).code).toBe(0);
    for (const flag of [
      '--server',
      '--worker-id',
      '--shared-dir',
      '--poll-interval',
      '--heartbeat-interval',
      '--status-poll-interval',
      '--exit-after-job',
      '--log-level',
      '--concurrency',
      '--token',
      '--command',
      '--state-dir',
    ]) {
      expect(help.stdout).toContain(flag);
    }
    expect(help.stdout).not.toContain('--jobs-dir');
  });
});

describe('http-agent readiness', () => {
  it('/readyz fails with a reason while the backend does not answer, and recovers with it', async () => {
    const agent = startAgent(['--health-port', '0']);
    await agent.waitForOutput('health server on port');
    const port = Number(/health server on port (\d+)/.exec(agent.stderr)![1]);
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    await waitFor(async () => (await readyz()).status === 200);

    server.fault = (req) => (req.url === '/api/agent/next-job' ? { destroy: true } : undefined);
    const away = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    expect(away.body.reason).toMatch(/not connected to its broker/);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^jw_broker_connected 0$/m);

    server.fault = undefined;
    await waitFor(async () => (await readyz()).status === 200);
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  }, 180_000);
});
