import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
let server: Server;
let url: string;
const seen: string[] = [];
const BODY = JSON.stringify({ hello: 'from the server' });

beforeEach(async () => {
  box = await createSandbox('jw-file-worker-handlers-');
  q = queue(box);
  seen.length = 0;
  // Busy first, then fine: the handler must try again after the 503.
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers['x-job'] ?? ''}`);
    if (seen.length === 1) res.writeHead(503).end('busy');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(BODY);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterEach(async () => {
  await killWorkers();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await box.cleanup();
});

describe('file-worker built-in handlers', () => {
  it('runs an http.request step that gets a 503, then a 200, and saves the body', async () => {
    await box.makeJob('call', {
      steps: [
        { uses: 'echo', with: { message: 'calling the hook' } },
        {
          name: 'hook',
          uses: 'http.request',
          with: {
            url,
            method: 'POST',
            headers: { 'x-job': 'call' },
            body: { ping: 1 },
            retryDelayMs: 50,
            saveTo: 'out/answer.json',
          },
        },
      ],
    });
    await q.drop('call.json', { id: 'call' });
    expect(await startWorker(box, ['--max-jobs', '1']).exited).toEqual({ code: 0, signal: null });
    expect(await q.result('call')).toMatchObject({ status: 'success', exitCode: 0 });
    expect(seen).toEqual(['POST /hook call', 'POST /hook call']);
    const m = await box.readResult('call');
    expect(m.steps[1]).toMatchObject({
      name: 'hook',
      command: 'uses: http.request',
      status: 'success',
      exitCode: 0,
      output: {
        method: 'POST',
        status: 200,
        size: Buffer.byteLength(BODY),
        attempts: 2,
        savedTo: 'out/answer.json',
      },
    });
    expect(await box.readLog('call', 0)).toBe('calling the hook\n');
    const log = await box.readLog('call', 1);
    expect(log).toContain(`POST ${url} -> 503, try 2 of 4 in 50 ms\n`);
    expect(log).toContain(
      `POST ${url} -> 200, ${Buffer.byteLength(BODY)} bytes, saved to out/answer.json\n`,
    );
    // Saved in the workspace, so synced back as an artifact.
    expect(m.artifacts.map((a: { path: string }) => a.path)).toEqual(['out/answer.json']);
    expect(await readFile(path.join(box.jobsDir, 'call/results/out/answer.json'), 'utf8')).toBe(
      BODY,
    );
  });

  it('refuses a job with an unknown handler or a bad handler input before any step runs', async () => {
    await q.drop('unknown.json', {
      id: 'unknown',
      steps: ['echo ran > ran.txt', { uses: 'no.such.handler' }],
    });
    await q.drop('bad.json', { id: 'bad', steps: [{ uses: 'http.request', with: { url: 'x' } }] });
    expect((await startWorker(box, ['--max-jobs', '2']).exited).code).toBe(0);
    const unknown = await q.result('unknown');
    expect(unknown).toMatchObject({ status: 'error', errorCode: 'BAD_JOB' });
    expect(unknown.error).toMatch(/step 1 uses unknown handler "no.such.handler"/);
    expect((await box.readResult('unknown')).steps).toEqual([]);
    const bad = await q.result('bad');
    expect(bad).toMatchObject({ status: 'error', errorCode: 'BAD_JOB' });
    expect(bad.error).toMatch(/bad input for "http.request": with\.url/);
    expect(seen).toEqual([]);
  });

  it("masks the secrets of a job in a handler step's log, output and result", async () => {
    const token = 'tok-5e4d3c2b1a';
    await box.makeJob('sec', {
      env: { API_TOKEN: token },
      steps: [
        { uses: 'echo', with: { message: `echoing ${token}` } },
        // A shell step's progress report leaves the worker too (manifest, progress events).
        { name: 'report', run: 'echo "40 at $API_TOKEN" >> "$JW_PROGRESS"' },
        { uses: 'http.request', with: { url: `${url}/${token}`, retryDelayMs: 50 } },
        { uses: 'http.request', with: { url: `http://127.0.0.1:1/${token}`, retries: 0 } },
      ],
    });
    await q.drop('sec.json', { id: 'sec' });
    const worker = startWorker(box, ['--max-jobs', '1']);
    expect((await worker.exited).code).toBe(0);
    expect(seen).toHaveLength(2);
    expect(await box.readLog('sec', 0)).toBe('echoing ***\n');
    expect(await box.readLog('sec', 2)).toContain(`GET ${url}/*** -> 503`);
    const result = await q.result('sec');
    expect(result).toMatchObject({ status: 'failed' });
    const manifest = await box.readResult('sec');
    expect(manifest.progress).toMatchObject({ percent: 40, message: 'at ***' });
    // The queue's progress file holds the last event only (here: the failure).
    const events = await readFile(path.join(box.root, 'queue/progress/sec.json'), 'utf8');
    for (const text of [
      await box.readLog('sec', 2),
      await box.readLog('sec', 3),
      JSON.stringify(manifest),
      JSON.stringify(result),
      events,
      worker.stdout + worker.stderr,
    ])
      expect(text).not.toContain(token);
  });
});
