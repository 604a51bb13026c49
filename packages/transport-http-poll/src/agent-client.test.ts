import type { IncomingMessage, ServerResponse } from 'node:http';
import { type FaultyHttpServer, startFaultyHttpServer } from '@jw/testing/http';
import { closedPort } from '@jw/testing/process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentCallError, AgentClient } from './agent-client.js';

let server: FaultyHttpServer;
let answer: (req: IncomingMessage, res: ServerResponse) => void;
let seen: IncomingMessage[];

beforeAll(async () => {
  server = await startFaultyHttpServer((req, res) => {
    seen.push(req);
    req.resume();
    req.on('end', () => answer(req, res));
  });
});
afterAll(() => server.stop());
beforeEach(() => {
  seen = [];
  server.fault = undefined;
});

// Generous: only the test of a server that never answers waits for a time-out.
const client = (token?: string, timeoutMs = 30_000) =>
  new AgentClient({ server: `${server.url}/`, token, timeoutMs });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error as AgentCallError,
  );

describe('AgentClient', () => {
  it('reads 204 as no job and 200 as the raw job', async () => {
    answer = (_req, res) => res.writeHead(204).end();
    expect(await client().nextJob('w')).toBeUndefined();
    answer = (_req, res) => res.end('{"job_id":"j"}');
    expect(await client().nextJob('w')).toBe('{"job_id":"j"}');
    expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /api/agent/next-job',
      'POST /api/agent/next-job',
    ]);
  });

  it('sends the bearer token only when there is one', async () => {
    answer = (_req, res) => res.end('{}');
    await client('t0k').heartbeat('w', {});
    await client().heartbeat('w', {});
    expect(seen.map((r) => r.headers.authorization)).toEqual(['Bearer t0k', undefined]);
  });

  it('reads a job status, undefined for an unknown job, and fails on a bad answer', async () => {
    answer = (_req, res) => res.end('{"status":"stop_requested"}');
    expect(await client().jobStatus('a b')).toBe('stop_requested');
    expect(seen[0]!.url).toBe('/status/a%20b');
    answer = (_req, res) => res.writeHead(404).end('{"error":"unknown"}');
    expect(await client().jobStatus('x')).toBeUndefined();
    answer = (_req, res) => res.end('<html>');
    expect((await failure(client().jobStatus('x'))).message).toMatch(/not JSON/);
    answer = (_req, res) => res.end('{"state":"running"}');
    expect((await failure(client().jobStatus('x'))).message).toMatch(/no "status"/);
  });

  it('tells transient failures from refusals', async () => {
    for (const [status, transient] of [
      [500, true],
      [503, true],
      [408, true],
      [429, true],
      [401, false],
      [422, false],
    ] as const) {
      answer = (_req, res) => res.writeHead(status).end();
      const error = await failure(
        client().postStatus({ job_id: 'j', status: 'finished', worker_id: 'w' }),
      );
      expect(error).toBeInstanceOf(AgentCallError);
      expect([error.status, error.transient]).toEqual([status, transient]);
    }
  });

  it('fails transiently on a time-out, a dropped connection and an endless answer', async () => {
    server.fault = () => ({ hang: true });
    const timedOut = await failure(client(undefined, 300).nextJob('w'));
    expect([timedOut.message, timedOut.transient]).toEqual([
      'POST /api/agent/next-job: timed out',
      true,
    ]);
    server.fault = () => ({ destroy: true });
    expect((await failure(client().nextJob('w'))).transient).toBe(true);
    server.fault = () => ({ status: 200, body: 'x'.repeat(2 * 1024 * 1024) });
    const big = await failure(client().nextJob('w'));
    expect([big.message, big.transient]).toEqual([expect.stringMatching(/larger than/), true]);
  });

  it('fails transiently when nothing listens', async () => {
    // A privileged port nothing listens on: no other test's server can take it meanwhile.
    const nobody = new AgentClient({
      server: `http://127.0.0.1:${await closedPort()}`,
      timeoutMs: 30_000,
    });
    const refused = await failure(nobody.nextJob('w'));
    expect(refused.message).toBe('POST /api/agent/next-job: ECONNREFUSED');
    expect([refused.status, refused.transient]).toEqual([undefined, true]);
  });
});
