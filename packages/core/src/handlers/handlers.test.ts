import { readFile, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createSandbox, exists, type Sandbox, waitFor } from '@jw/testing/fs';
import { closedPort } from '@jw/testing/process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../define-handler.js';
import { isJwError } from '../errors.js';
import type { Step } from '../job-definition.js';
import { runStep } from '../run-steps.js';
import { StepLog } from '../step-log.js';
import { retryAfterMs } from './http-request.js';
import { checkUsesSteps, handlerMap } from './registry.js';
import type { Handlers, StepProgress } from './types.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

const uses = (name: string, input: Record<string, unknown> = {}, index = 0): Step => ({
  index,
  name,
  uses: name,
  with: input,
  env: {},
  continueOnError: false,
});

async function run(
  s: Step,
  extra: { signal?: AbortSignal; handlers?: Handlers; onProgress?: (p: StepProgress) => void } = {},
) {
  const log = await StepLog.create(box.root, s.index);
  try {
    const outcome = await runStep(s, {
      workspace: box.workspacesDir,
      env: {},
      log,
      signal: extra.signal ?? new AbortController().signal,
      killGraceMs: 300,
      ...(extra.handlers ? { handlers: extra.handlers } : {}),
      ...(extra.onProgress ? { onProgress: extra.onProgress } : {}),
    });
    return { outcome, log: await readFile(log.file, 'utf8') };
  } finally {
    await log.close();
  }
}

async function badJob(steps: Step[], handlers?: Handlers): Promise<string> {
  const error = await checkUsesSteps(steps, handlers).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isJwError(error, 'BAD_JOB')) throw new Error(`expected BAD_JOB, got ${String(error)}`);
  return error.message;
}

describe('defineHandler', () => {
  it('takes zod, a Standard Schema or a safeParse schema, and runs with the validated input', async () => {
    const seen: unknown[] = [];
    const viaZod = defineHandler({
      name: 'zod',
      schema: z.object({ n: z.number().default(7) }),
      run: (_ctx, input) => {
        seen.push(input.n);
      },
    });
    const viaStandard = defineHandler({
      name: 'standard',
      schema: {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: (v: unknown) =>
            typeof (v as { s?: unknown }).s === 'string'
              ? { value: { s: (v as { s: string }).s.toUpperCase() } }
              : { issues: [{ message: 'expected a string', path: ['s'] }] },
        },
      },
      run: (_ctx, input: { s: string }) => {
        seen.push(input.s);
      },
    });
    const viaSafeParse = defineHandler({
      name: 'safe',
      schema: {
        safeParse: (v: unknown) =>
          Array.isArray(v)
            ? { success: false, error: new Error('no arrays') }
            : { success: true, data: 1 },
      },
      run: () => {
        seen.push('safe');
      },
    });
    const handlers = [viaZod, viaStandard, viaSafeParse];
    await checkUsesSteps([uses('zod'), uses('standard', { s: 'x' }), uses('safe')], handlers);
    for (const s of [uses('zod'), uses('standard', { s: 'abc' }), uses('safe')])
      expect((await run(s, { handlers })).outcome.status).toBe('success');
    expect(seen).toEqual([7, 'ABC', 'safe']);
    expect(await badJob([uses('zod', { n: 'one' }, 2)], handlers)).toMatch(
      /^step 2 \(zod\): bad input for "zod": with\.n: expected number/,
    );
    expect(await badJob([uses('standard', { s: 1 })], handlers)).toMatch(
      /with\.s: expected a string/,
    );
    expect(() => defineHandler({ name: 'has space', schema: z.object({}), run: () => {} })).toThrow(
      /must match/,
    );
    expect(() => defineHandler({ name: 'x', schema: {} as never, run: () => {} })).toThrow(
      /Standard Schema/,
    );
  });

  it('gives the step, cwd and env, notes progress in the log and forwards it', async () => {
    const probe = defineHandler({
      name: 'probe',
      schema: z.object({}),
      run(ctx) {
        ctx.progress(40, 'half way');
        ctx.progress(250);
        ctx.log.write(
          `${ctx.step.index} ${ctx.step.name} ${ctx.cwd === ctx.workspace} ${ctx.env.A}\n`,
        );
        return { output: { ok: true } };
      },
    });
    const reports: StepProgress[] = [];
    const log = await StepLog.create(box.root, 3);
    const outcome = await runStep(uses('probe', {}, 3), {
      workspace: box.workspacesDir,
      env: { A: 'a' },
      log,
      signal: new AbortController().signal,
      killGraceMs: 300,
      handlers: [probe],
      onProgress: (p) => reports.push(p),
    });
    await log.close();
    expect(outcome).toMatchObject({ status: 'success', output: { ok: true } });
    expect(reports).toEqual([{ percent: 40, message: 'half way' }, { percent: 100 }]);
    expect(await readFile(log.file, 'utf8')).toBe(
      'progress 40% half way\nprogress 100%\n3 probe true a\n',
    );
  });
});

describe('the worker handlers', () => {
  it('are the built-ins plus the worker own, which win by name; an unknown one is a BAD_JOB', async () => {
    expect([...handlerMap().keys()].sort()).toEqual(['echo', 'http.request', 'sleep']);
    const mine = defineHandler({
      name: 'echo',
      schema: z.object({}),
      run: (ctx) => ctx.log.write('mine\n'),
    });
    expect((await run(uses('echo'), { handlers: [mine] })).log).toBe('mine\n');
    expect((await run(uses('echo'), { handlers: { echo: mine } })).log).toBe('mine\n');
    expect(await badJob([uses('echo', { message: 'x' }), uses('nope', {}, 1)])).toMatch(
      /^step 1 uses unknown handler "nope" \(this worker has: echo, http\.request, sleep\)/,
    );
    expect(() => handlerMap([mine, mine])).toThrow(/two handlers are named "echo"/);
  });

  it('echo writes its message to the step log; a bad input fails the step', async () => {
    expect(await run(uses('echo', { message: 'hello jw' }))).toMatchObject({
      outcome: { status: 'success', exitCode: 0 },
      log: 'hello jw\n',
    });
    const bad = await run(uses('echo', { message: 3 }));
    expect(bad.outcome).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(bad.log).toMatch(/bad input for "echo": with\.message/);
    expect(await badJob([uses('echo')])).toMatch(/with\.message/);
  });

  it('sleep waits, and stops at once on abort', async () => {
    expect((await run(uses('sleep', { seconds: 0.05 }))).outcome.status).toBe('success');
    const abort = new AbortController();
    const logFile = path.join(box.root, 'step_0.log');
    const started = Date.now();
    const running = run(uses('sleep', { seconds: 3600 }), { signal: abort.signal });
    await waitFor(
      async () => (await exists(logFile)) && (await readFile(logFile, 'utf8')).includes('sleeping'),
    );
    abort.abort('cancel');
    const { outcome } = await running;
    expect(outcome).toMatchObject({ status: 'cancelled', stoppedBy: 'cancel' });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await badJob([uses('sleep', { seconds: -1 })])).toMatch(/with\.seconds/);
  });
});

describe('http.request', () => {
  let server: Server;
  let base: string;
  beforeEach(async () => {
    server = createServer((req, res) => {
      if (req.url === '/missing') res.writeHead(404).end('nope');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ok`);
    });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fails on a 4xx answer with the status in the output, unless told not to', async () => {
    const missing = await run(uses('http.request', { url: `${base}/missing`, retries: 0 }));
    expect(missing.outcome).toMatchObject({
      status: 'failed',
      exitCode: 1,
      error: `GET ${base}/missing answered 404`,
      output: { method: 'GET', status: 404, size: 4, attempts: 1 },
    });
    const allowed = await run(
      uses('http.request', { url: `${base}/missing`, failOnHttpError: false, method: 'delete' }),
    );
    expect(allowed.outcome).toMatchObject({
      status: 'success',
      output: { method: 'DELETE', status: 404 },
    });
  });

  it('waits what a 429 or 503 asks for in Retry-After, seconds or a date', async () => {
    let calls = 0;
    server.removeAllListeners('request');
    server.on('request', (_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else if (calls === 2)
        res.writeHead(503, { 'retry-after': new Date(Date.now() - 5000).toUTCString() }).end();
      else res.writeHead(200).end('ok');
    });
    const started = Date.now();
    const { outcome, log } = await run(
      uses('http.request', { url: `${base}/busy`, retryDelayMs: 10 }),
    );
    expect(outcome).toMatchObject({ status: 'success', output: { status: 200, attempts: 3 } });
    // The server's 1 s, not the 10 ms back-off; a date in the past is no wait at all.
    expect(log).toMatch(/-> 429, try 2 of 4 in 1000 ms\n.*-> 503, try 3 of 4 in 0 ms\n/s);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('reads Retry-After as seconds or an HTTP date, bounded', () => {
    const now = Date.parse('2026-12-02T04:00:00Z');
    expect(retryAfterMs('7', now)).toBe(7000);
    expect(retryAfterMs('Wed, 02 Dec 2026 04:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('99999', now)).toBe(300_000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('tries again after connection errors, then fails naming the cause', async () => {
    const port = await closedPort();
    const { outcome, log } = await run(
      uses('http.request', {
        url: `http://127.0.0.1:${port}/x?token=s3cret`,
        retries: 2,
        retryDelayMs: 10,
      }),
    );
    expect(outcome).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(outcome.error).toMatch(/failed after 3 tries: ECONNREFUSED/);
    expect(log).toMatch(/try 2 of 3 in 10 ms\n.*try 3 of 3 in 20 ms\n/s);
    expect(log).not.toContain('s3cret');
  });

  it('saves the body only inside the workspace, never through a link', async () => {
    await symlink(box.root, path.join(box.workspacesDir, 'out'));
    const escaped = await run(uses('http.request', { url: `${base}/`, saveTo: 'out/body.txt' }));
    expect(escaped.outcome).toMatchObject({ status: 'failed' });
    expect(escaped.outcome.error).toMatch(
      /cannot save the body: out\/body.txt leads out of the workspace/,
    );
    expect(await exists(path.join(box.root, 'body.txt'))).toBe(false);
    expect(await badJob([uses('http.request', { url: `${base}/`, saveTo: '../x' })])).toMatch(
      /with\.saveTo/,
    );
    expect(await badJob([uses('http.request', { url: 'ftp://h/x' })])).toMatch(/with\.url/);
    expect(await badJob([uses('http.request', { url: `${base}/`, body: 'b' })])).toMatch(
      /with\.body: GET and HEAD requests have no body/,
    );
  });
});
