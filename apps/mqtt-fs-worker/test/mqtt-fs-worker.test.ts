import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import {
  type Mosquitto,
  mosquittoPub,
  startMosquitto,
  type TopicWatch,
  watchTopics,
} from '@jw/testing/mosquitto';
import { freePort, type Spawned, spawnProcess } from '@jw/testing/process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));
const USER = 'jw-worker';
const PASSWORD = 'pa55-word-never-in-steps';

let broker: Mosquitto;
let sb: Sandbox;
let watch: TopicWatch;
const children: Spawned[] = [];

beforeAll(async () => {
  broker = await startMosquitto({ users: { [USER]: PASSWORD, controller: 'ctl' } });
});
afterAll(async () => {
  await broker?.close();
});
beforeEach(async () => {
  sb = await createSandbox('jw-mqtt-app-');
  watch = await watchTopics(broker.url, ['jobs/#', 'workers/#'], {
    username: 'controller',
    password: 'ctl',
  });
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.child.exitCode === null && child.child.signalCode === null) child.kill('SIGKILL');
    await child.exited;
  }
  await watch.close();
  await sb.cleanup();
});

const auth = { username: 'controller', password: 'ctl' };

/** The built binary, configured the way the seed's users do: through the environment. */
function worker(args: string[], env: Record<string, string> = {}, cwd = sb.root): Spawned {
  const child = spawnProcess(process.execPath, [BIN, ...args], {
    cwd,
    env: {
      PATH: process.env.PATH,
      MQTT_URL: broker.url,
      MQTT_USERNAME: USER,
      MQTT_PASSWORD: PASSWORD,
      MQTT_JOBS_DIR: sb.jobsDir,
      MQTT_WORKSPACES_DIR: sb.workspacesDir,
      LOG_FORMAT: 'json',
      ...env,
    },
  });
  children.push(child);
  return child;
}

const online = (id: string, after = 0) =>
  watch.waitFor(
    (m) =>
      m.topic === `workers/${id}/status` &&
      m.payload.includes('"online"') &&
      watch.messages.indexOf(m) >= after,
  );
const resultOf = async (id: string, timeoutMs?: number) =>
  JSON.parse((await watch.waitFor((m) => m.topic === `jobs/results/${id}`, timeoutMs)).payload);

describe('mqtt-fs-worker', () => {
  it('runs the seed README example: a shared subscription with a clean session', async () => {
    await sb.makeJob('job_2026_01', {
      steps: ['npm --version > npm-version.txt', 'echo built > app.txt'],
    });
    const w = worker(['--topic', '$share/worker-group/jobs/pending', '--clean'], {
      WORKER_ID: 'readme-1',
    });
    await online('readme-1');
    await mosquittoPub(broker.url, 'jobs/pending', '{\n  "id": "job_2026_01"\n}', auth);
    expect(await resultOf('job_2026_01')).toMatchObject({
      id: 'job_2026_01',
      status: 'success',
      exitCode: 0,
      manifestFile: 'results/result.json',
    });
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(await readFile(path.join(sb.jobsDir, 'job_2026_01', 'results', 'app.txt'), 'utf8')).toBe(
      'built\n',
    );
  });

  it('runs the seed README dry run without a broker', async () => {
    await writeFile(
      path.join(sb.root, 'test-payload.json'),
      '{\n  "id": "dry-run-test",\n  "steps": ["echo \'Testing environment\'"]\n}\n',
    );
    const w = worker(['--dry-run'], {
      MQTT_URL: 'mqtt://127.0.0.1:1',
      MQTT_JOBS_DIR: './jobs',
      MQTT_WORKSPACES_DIR: './workspaces',
    });
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect(JSON.parse(w.stdout)).toMatchObject({
      id: 'dry-run-test',
      status: 'success',
      exitCode: 0,
    });
    expect(
      await readFile(path.join(sb.root, 'jobs', 'dry-run-test', 'results', 'step_0.log'), 'utf8'),
    ).toContain('Testing environment');
  });

  it('recovers the job of a worker killed with -9: it completes once, as attempt 2', async () => {
    await sb.makeJob('crash', { steps: ['echo started; sleep 2; echo finished'] });
    const first = worker([], { WORKER_ID: 'doomed' });
    await online('doomed');
    await mosquittoPub(broker.url, 'jobs/pending', JSON.stringify({ id: 'crash' }), auth);
    await watch.waitFor(
      (m) => m.topic === 'jobs/progress/crash' && m.payload.includes('"running"'),
    );
    first.kill('SIGKILL');
    await first.exited;
    // The broker publishes the last will: the status of the dead worker says offline.
    await watch.waitFor(
      (m) => m.topic === 'workers/doomed/status' && m.payload.includes('"offline"'),
    );
    const second = worker([], { WORKER_ID: 'rescuer' });
    const result = await resultOf('crash', 30_000);
    expect(result).toMatchObject({
      id: 'crash',
      status: 'success',
      attempt: 2,
      workerId: 'rescuer',
    });
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(watch.messages.filter((m) => m.topic === 'jobs/results/crash')).toHaveLength(1);
    const manifest = await sb.readResult('crash');
    expect(manifest).toMatchObject({
      status: 'success',
      attempt: 2,
      worker: { id: 'rescuer', transport: 'mqtt' },
    });
    expect(await sb.readLog('crash', 0)).toBe('started\nfinished\n');
  });

  it('never passes the MQTT password to steps', async () => {
    await sb.makeJob('env-dump', { steps: ['env > env.txt'] });
    const w = worker([], { WORKER_ID: 'secretive' });
    await online('secretive');
    await mosquittoPub(broker.url, 'jobs/pending', JSON.stringify({ id: 'env-dump' }), auth);
    expect(await resultOf('env-dump')).toMatchObject({ status: 'success' });
    await w.exited;
    const env = await readFile(path.join(sb.jobsDir, 'env-dump', 'results', 'env.txt'), 'utf8');
    expect(env).toContain('JW_JOB_ID=env-dump');
    expect(env).not.toContain('MQTT_PASSWORD');
    expect(env).not.toContain(PASSWORD);
  });

  it('exits 2 on bad settings and on refused credentials', async () => {
    const badVersion = worker(['--protocol-version', '7']);
    expect((await badVersion.exited).code).toBe(2);
    const badTopic = worker(['--topic', 'jobs/#/pending']);
    expect((await badTopic.exited).code).toBe(2);
    const refused = worker([], { MQTT_PASSWORD: 'wrong' });
    expect((await refused.exited).code).toBe(2);
    expect(refused.stdout + refused.stderr).toMatch(/refused the connection/);
  });

  it('exits 1 when the broker never comes', async () => {
    const port = await freePort();
    const w = worker(['--give-up-after', '1s'], { MQTT_URL: `mqtt://127.0.0.1:${port}` });
    expect((await w.exited).code).toBe(1);
    expect(w.stdout + w.stderr).toMatch(/no MQTT broker/);
  });

  it('SIGTERM while the broker is still unreachable at start: exits 0 at once', async () => {
    const port = await freePort();
    const w = worker(['--give-up-after', '5m'], { MQTT_URL: `mqtt://127.0.0.1:${port}` });
    await w.waitForOutput(/retrying|unreachable/);
    const asked = Date.now();
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(Date.now() - asked).toBeLessThan(5000);
  });

  it('SIGTERM while idle: says offline and exits 0', async () => {
    const w = worker(['--max-jobs', '0'], { WORKER_ID: 'idle-one' });
    await online('idle-one');
    w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    const status = watch.messages.filter((m) => m.topic === 'workers/idle-one/status').at(-1)!;
    expect(JSON.parse(status.payload)).toMatchObject({ status: 'offline' });
  });

  it('kill -9 of a busy worker loses nothing: held requests come back with its session', async () => {
    for (const id of ['busy-1', 'busy-2', 'busy-3']) await sb.makeJob(id, { steps: ['sleep 1'] });
    const first = worker(['--max-jobs', '0'], { WORKER_ID: 'busy' });
    await online('busy');
    await mosquittoPub(broker.url, 'jobs/pending', JSON.stringify({ id: 'busy-1' }), auth);
    await watch.waitFor(
      (m) => m.topic === 'jobs/progress/busy-1' && m.payload.includes('"running"'),
    );
    await mosquittoPub(broker.url, 'jobs/pending', JSON.stringify({ id: 'busy-2' }), auth);
    await mosquittoPub(broker.url, 'jobs/pending', JSON.stringify({ id: 'busy-3' }), auth);
    first.kill('SIGKILL');
    await first.exited;
    const seen = watch.messages.length;
    const again = worker(['--max-jobs', '3'], { WORKER_ID: 'busy' });
    await online('busy', seen);
    const results = await Promise.all(
      ['busy-1', 'busy-2', 'busy-3'].map((id) => resultOf(id, 30_000)),
    );
    expect(results.map((r) => [r.id, r.status, r.attempt])).toEqual([
      ['busy-1', 'success', 2],
      ['busy-2', 'success', 1],
      ['busy-3', 'success', 1],
    ]);
    expect(await again.exited).toEqual({ code: 0, signal: null });
    for (const id of ['busy-1', 'busy-2', 'busy-3']) {
      expect(watch.messages.filter((m) => m.topic === `jobs/results/${id}`)).toHaveLength(1);
    }
  });

  it('speaks MQTT 3.1.1 and records bad requests on a custom dead-letter topic', async () => {
    const dead = await watchTopics(broker.url, ['ops/dead'], auth);
    try {
      await sb.makeJob('after-bad', { steps: ['true'] });
      const w = worker(['--dead-letter-topic', 'ops/dead'], {
        WORKER_ID: 'v311',
        MQTT_PROTOCOL_VERSION: '3.1.1',
      });
      await online('v311');
      await mosquittoPub(broker.url, 'jobs/pending', '{"id": "../../etc"}', auth);
      const record = JSON.parse((await dead.waitFor((m) => m.topic === 'ops/dead')).payload);
      expect(record).toMatchObject({
        errorCode: 'BAD_REQUEST',
        payload: '{"id": "../../etc"}',
        workerId: 'v311',
      });
      await mosquittoPub(broker.url, 'jobs/pending', '{"id": "after-bad"}', auth);
      expect(await resultOf('after-bad')).toMatchObject({ status: 'success' });
      expect(await w.exited).toEqual({ code: 0, signal: null });
      expect(watch.messages.filter((m) => m.topic === 'jobs/dead')).toHaveLength(0);
    } finally {
      await dead.close();
    }
  });

  it('a failed job is a handled job: one-shot exit 0', async () => {
    await sb.makeJob('fails', { steps: ['echo about to fail; exit 3', 'echo never'] });
    const w = worker([], { WORKER_ID: 'failing' });
    await online('failing');
    await mosquittoPub(broker.url, 'jobs/pending', JSON.stringify({ id: 'fails' }), auth);
    expect(await resultOf('fails')).toMatchObject({
      status: 'failed',
      exitCode: 3,
      errorCode: 'STEP_FAILED',
    });
    expect(await w.exited).toEqual({ code: 0, signal: null });
  });
});
