import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { closedPort } from '@jw/testing/process';
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { consumerState, queue, startWorker } from './helpers.js';

let box: Sandbox;
let server: NatsServer | undefined;

beforeEach(async () => {
  box = await createSandbox('jw-nats-late-');
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await box.cleanup();
});

/** The worker's JSON log lines at `error` level (pino: 50) or above. */
function errorLines(output: string): { msg: string; code?: string; err?: string }[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.level >= 50);
}

const WAITING = 'NATS server not reachable; waiting for it';

describe('nats-fs-worker started before its server', () => {
  it('waits for the server, then runs the job queued on it', async () => {
    const q = queue('late');
    server = await startNatsServer();
    // A request already stored in the stream, and the results captured too, so the
    // result message can be read back however late the test's own client connects.
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: q.stream,
      subjects: [q.input, `${q.output}.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
    });
    await box.makeJob('queued', { steps: ['echo ran > out.txt'] });
    await jetstream(nc).publish(q.input, JSON.stringify({ id: 'queued' }));
    await nc.close();
    await server.stop();

    const worker = startWorker([
      '-u',
      server.url,
      '-j',
      box.jobsDir,
      '-w',
      box.workspacesDir,
      ...q.flags,
      '--id',
      'late',
      '--reconnect-wait',
      '0.5',
    ]);
    await worker.waitForOutput(WAITING);
    // Still waiting, not gone: the old worker exited 1 here within 30 ms.
    expect(worker.child.exitCode).toBeNull();
    await server.start();
    expect((await worker.exited).code).toBe(0);
    expect(worker.stderr).toContain('NATS server reachable');
    expect(await box.readResult('queued')).toMatchObject({ status: 'success' });

    const check = await connect({ servers: server.url });
    try {
      const result = await (await jetstreamManager(check)).streams.getMessage(q.stream, {
        last_by_subj: `${q.output}.queued`,
      });
      expect(result?.json()).toMatchObject({ id: 'queued', status: 'success' });
      const consumer = await consumerState(check, q.stream, 'late');
      expect([consumer.num_pending, consumer.num_ack_pending]).toEqual([0, 0]);
    } finally {
      await check.close();
    }
  });

  it('exits 1 with one clear error line when the server stays away past NATS_GIVE_UP_AFTER', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    const worker = startWorker(['-u', url, '-j', box.jobsDir, '-w', box.workspacesDir], {
      env: { NATS_GIVE_UP_AFTER: '2', NATS_RECONNECT_WAIT: '0.5' },
    });
    expect((await worker.exited).code).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    const errors = errorLines(worker.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      code: 'TRANSPORT_FAILED',
      msg: expect.stringContaining(`no NATS server at ${url} within 2 s`),
    });
    // One warning when the wait starts, not one per try.
    expect(worker.stderr.split(WAITING)).toHaveLength(2);
  });

  it('--give-up-after bounds the wait too, and SIGTERM while waiting exits 0 at once', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const quick = startWorker([
      '-u',
      url,
      '-j',
      box.jobsDir,
      '-w',
      box.workspacesDir,
      '--give-up-after',
      '1',
    ]);
    expect((await quick.exited).code).toBe(1);
    expect(errorLines(quick.stderr)[0]!.msg).toContain('within 1 s');

    // The default wait is 5 minutes; SIGTERM must end it.
    const worker = startWorker(['-u', url, '-j', box.jobsDir, '-w', box.workspacesDir]);
    await worker.waitForOutput(WAITING);
    worker.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    expect(worker.stderr).toMatch(/"reason":"stopped".*"msg":"worker finished"/);
    expect(errorLines(worker.stderr)).toEqual([]);
  });
});
