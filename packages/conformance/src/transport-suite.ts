import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createWorker, type ResultMessage, type Transport, type WorkerOptions } from '@jw/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Sandbox } from './sandbox.js';

/** How the shared suite drives one transport, the way a controller would. */
export interface ConformanceHarness {
  sandbox: Sandbox;
  /** A new transport instance: one more worker on the same source. */
  createTransport(workerId: string): Transport;
  /** Sends a raw request as a controller does (publish, drop a file, ...). */
  send(body: string): Promise<void>;
  /** The result message published for `id` (waits for it). */
  result(id: string): Promise<ResultMessage>;
  /** Resolves once `raw` was recorded on the transport's dead-letter output. */
  deadLetter(raw: string): Promise<void>;
  close(): Promise<void>;
}

const PATH = { PATH: process.env.PATH ?? '' };

/**
 * The executable form of the `Transport` contract in `@jw/core` (transport.ts), run by
 * every transport that delivers SPEC 2 requests and publishes SPEC 7 result messages.
 * (HTTP polling speaks a controller-owned protocol of its own and has its own suite.)
 */
export function describeTransportConformance(
  name: string,
  setup: () => Promise<ConformanceHarness>,
): void {
  describe(`${name}: the Transport contract`, () => {
    let h: ConformanceHarness;
    beforeEach(async () => {
      h = await setup();
    });
    afterEach(async () => {
      await h.close();
    });

    /** A worker whose `ready` resolves once its transport has started (subscribed, watching). */
    const worker = (id: string, extra: Partial<WorkerOptions> = {}) => {
      const inner = h.createTransport(id);
      let started!: () => void;
      const ready = new Promise<void>((resolve) => {
        started = resolve;
      });
      const transport: Transport = {
        name: inner.name,
        ...(inner.secretEnv ? { secretEnv: inner.secretEnv } : {}),
        start: async (context) => {
          await inner.start(context);
          started();
        },
        next: (signal) => inner.next(signal),
        stop: () => inner.stop(),
      };
      const w = createWorker({
        transport,
        jobsDir: h.sandbox.jobsDir,
        workspacesDir: h.sandbox.workspacesDir,
        workerId: id,
        env: PATH,
        killGraceMs: 500,
        ...extra,
      });
      return Object.assign(w, { ready });
    };

    it('delivers a request and publishes its result once result.json is final', async () => {
      await h.sandbox.makeJob('c-ok', { steps: ['echo ok'] });
      const w = worker('w1', { maxJobs: 1 });
      const run = w.run();
      await w.ready;
      await h.send(JSON.stringify({ id: 'c-ok' }));
      expect((await run).handled).toBe(1);
      const result = await h.result('c-ok');
      expect(result).toMatchObject({
        id: 'c-ok',
        status: 'success',
        exitCode: 0,
        manifestFile: 'results/result.json',
        workerId: 'w1',
      });
      expect(await h.sandbox.readResult('c-ok')).toMatchObject({
        status: 'success',
        attempt: result.attempt,
      });
    });

    it('answers a bad request whose id is known, dead-letters it, never runs it, and goes on', async () => {
      const bad = JSON.stringify({ id: 'c-bad', steps: [] });
      await h.sandbox.makeJob('c-next', { steps: ['true'] });
      const w = worker('w1', { maxJobs: 1 });
      const run = w.run();
      await w.ready;
      await h.send('not json at all');
      await h.send(bad);
      await h.send(JSON.stringify({ id: 'c-next' }));
      const summary = await run;
      expect(summary).toMatchObject({ handled: 1, rejected: 2 });
      expect(await h.result('c-bad')).toMatchObject({
        id: 'c-bad',
        status: 'error',
        errorCode: 'BAD_REQUEST',
      });
      await h.deadLetter(bad);
      await h.deadLetter('not json at all');
      await expect(
        readFile(path.join(h.sandbox.jobsDir, 'c-bad', 'results', 'result.json')),
      ).rejects.toThrow();
      expect(await h.result('c-next')).toMatchObject({ status: 'success' });
    });

    it('resolves next() with null when its signal aborts, and loses nothing', async () => {
      const t = h.createTransport('w0');
      const stop = new AbortController();
      await t.start({
        workerId: 'w0',
        jobsDir: h.sandbox.jobsDir,
        concurrency: 1,
        logger: { debug() {}, info() {}, warn() {}, error() {} },
        cancelJob: () => false,
        activeJobs: () => [],
        signal: stop.signal,
      });
      const fetch = new AbortController();
      const pending = t.next(fetch.signal);
      fetch.abort();
      expect(await pending).toBeNull();
      stop.abort();
      await t.stop();
      await h.sandbox.makeJob('c-after', { steps: ['true'] });
      const w = worker('w1', { maxJobs: 1 });
      const run = w.run();
      await w.ready;
      await h.send(JSON.stringify({ id: 'c-after' }));
      await run;
      expect(await h.result('c-after')).toMatchObject({ status: 'success', workerId: 'w1' });
    });

    it('gives back a job cut short by stop(), and another worker runs it as attempt 2', async () => {
      const dir = await h.sandbox.makeJob('c-back', { steps: ['sleep 30'] });
      const a = worker('wa', { maxJobs: 1 });
      a.on('event', (e) => {
        if (e.state === 'running') void a.stop(0);
      });
      const runA = a.run();
      await a.ready;
      await h.send(JSON.stringify({ id: 'c-back' }));
      expect((await runA).reason).toBe('stopped');
      expect((await h.sandbox.readResult('c-back')).status).toBe('requeued');
      await writeFile(path.join(dir, 'job.json'), JSON.stringify({ steps: ['echo second'] }));
      const b = worker('wb', { maxJobs: 1 });
      await b.run();
      expect(await h.result('c-back')).toMatchObject({
        status: 'success',
        attempt: 2,
        workerId: 'wb',
      });
    });

    it('runs each of 12 requests exactly once across two workers', async () => {
      const runs = path.join(h.sandbox.root, 'runs.txt');
      const ids = Array.from({ length: 12 }, (_, i) => `c-many-${i}`);
      for (const id of ids) await h.sandbox.makeJob(id, { steps: [`echo $JW_JOB_ID >> ${runs}`] });
      const a = worker('wa', { idleTimeoutMs: 1500 });
      const b = worker('wb', { idleTimeoutMs: 1500 });
      const both = Promise.all([a.run(), b.run()]);
      await Promise.all([a.ready, b.ready]);
      for (const id of ids) await h.send(JSON.stringify({ id }));
      await both;
      const lines = (await readFile(runs, 'utf8')).trim().split('\n').sort();
      expect(lines).toEqual([...ids].sort());
      for (const id of ids) expect((await h.result(id)).status).toBe('success');
    });
  });
}
