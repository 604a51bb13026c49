import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '@jw/core';
import { createSandbox, type Sandbox, waitFor } from '@jw/testing/fs';
import { type FaultyHttpServer, startFaultyHttpServer } from '@jw/testing/http';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from './agent-client.js';
import { StatusOutbox } from './status-outbox.js';
import type { StatusReport } from './status-words.js';

let server: FaultyHttpServer;
let received: StatusReport[];
let sandbox: Sandbox;

beforeAll(async () => {
  server = await startFaultyHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.end('{}');
    });
  });
});
afterAll(() => server.stop());
beforeEach(async () => {
  received = [];
  server.fault = undefined;
  sandbox = await createSandbox('jw-outbox-');
});
afterEach(() => sandbox.cleanup());

const report = (jobId: string): StatusReport => ({
  job_id: jobId,
  status: 'finished',
  worker_id: 'w',
  exit_code: 0,
});

function outbox() {
  const box = new StatusOutbox({
    dir: path.join(sandbox.root, 'state'),
    // Generous: a busy machine must not turn a slow answer into a retry.
    client: new AgentClient({ server: server.url, timeoutMs: 30_000 }),
    logger: silentLogger,
    retryInitialMs: 20,
    retryMaxMs: 50,
  });
  return box;
}

describe('StatusOutbox', () => {
  it('sends at once and keeps nothing when the backend takes it', async () => {
    const box = outbox();
    await box.open();
    await box.send(report('a'));
    expect(received).toEqual([report('a')]);
    expect(await box.stored()).toEqual([]);
    await box.close();
  });

  it('keeps a report the backend cannot take, and a new outbox on the same folder delivers it', async () => {
    server.fault = () => ({ status: 503 });
    const first = outbox();
    await first.open();
    await first.send(report('b'));
    expect(await first.flush()).toBe(1);
    await first.close();
    expect(await readdir(path.join(sandbox.root, 'state'))).toHaveLength(1);

    server.fault = undefined;
    const second = outbox();
    await second.open();
    await waitFor(() => received.length > 0);
    expect(received).toEqual([report('b')]);
    await second.close();
  });

  it('retries on its own timer until the backend comes back', async () => {
    await server.stop();
    const box = outbox();
    await box.open();
    await box.send(report('c'));
    expect(await box.stored()).toEqual([report('c')]);
    await server.start();
    await waitFor(() => received.length > 0);
    await box.close();
    expect(await box.stored()).toEqual([]);
  });

  it('removes the temporary files of a write that a kill interrupted, and keeps the reports', async () => {
    server.fault = () => ({ status: 503 });
    const first = outbox();
    await first.open();
    await first.send(report('kept'));
    await first.close();
    const dir = path.join(sandbox.root, 'state');
    const [stored] = await readdir(dir);
    // writeFileAtomic's temporary name: a kill between write and rename leaves it.
    await writeFile(path.join(dir, `.${stored}.0123456789ab.tmp`), '{"job_id":"ha');
    const second = outbox();
    await second.open();
    expect(await readdir(dir)).toEqual([stored]);
    expect(await second.stored()).toEqual([report('kept')]);
    await second.close();
  });

  it('drops a report the backend refuses for good (404, 422)', async () => {
    server.fault = () => ({ status: 404, body: '{"error":"unknown job"}' });
    const box = outbox();
    await box.open();
    await box.send(report('gone'));
    expect(await box.stored()).toEqual([]);
    await box.close();
  });

  it('keeps ids that are not file names apart', async () => {
    server.fault = () => ({ status: 500 });
    const box = outbox();
    await box.open();
    await box.send(report('../x'));
    await box.send(report('x'));
    expect((await box.stored()).map((r) => r.job_id).sort()).toEqual(['../x', 'x']);
    await box.close();
  });
});
