import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from './define-handler.js';
import type { JobEvent } from './events.js';
import { createMemoryTransport } from './memory-transport.js';
import type { WorkerObserver } from './observer.js';
import { createWorker } from './worker.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox('jw-observer-');
});
afterEach(async () => {
  await box.cleanup();
});

/** Records every hook call as one line. */
function recorder(calls: string[]): WorkerObserver {
  return {
    attempt(start) {
      calls.push(`attempt ${start.jobId} ${start.attempt} ${start.trace?.traceparent ?? '-'}`);
      return {
        stage: () => ({ end: (r) => calls.push(`stage files=${r.files} error=${r.errorCode}`) }),
        step(step) {
          calls.push(`step ${step.index} ${step.name}`);
          return {
            env: { JW_OBSERVED: `seen-${step.index}` },
            end: (r) => calls.push(`step-end ${step.index} ${r.status} ${r.exitCode}`),
          };
        },
        sync: () => ({ end: (r) => calls.push(`sync files=${r.files} bytes=${r.bytes}`) }),
        end: (r) => calls.push(`end ${r.status} ${r.exitCode} ${r.errorCode ?? '-'}`),
      };
    },
    rejected: (reason, jobId) => calls.push(`rejected ${reason} ${jobId}`),
    resultWaiting: (delta) => calls.push(`waiting ${delta}`),
  };
}

/** Throws from every hook: must never change what a job does. */
const broken: WorkerObserver = {
  attempt() {
    throw new Error('observer bug');
  },
  rejected() {
    throw new Error('observer bug');
  },
  resultWaiting() {
    throw new Error('observer bug');
  },
};

describe('worker observers', () => {
  it('are told of each attempt, phase and step, give steps env, and cannot break a job', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const transport = createMemoryTransport(
      [
        {
          id: 'seen',
          traceparent,
          steps: ['echo "$JW_OBSERVED" > out.txt', 'exit 4'],
        },
        '{"id": "bad", "steps": 1}',
      ],
      { ended: true },
    );
    const calls: string[] = [];
    const worker = createWorker({
      transport,
      jobsDir: box.jobsDir,
      workspacesDir: box.workspacesDir,
      env: { PATH: process.env.PATH ?? '' },
      observers: [broken, recorder(calls)],
    });
    const summary = await worker.run();
    expect(summary.results.map((r) => [r.id, r.status, r.exitCode])).toEqual([
      ['seen', 'failed', 4],
    ]);
    expect(await box.readLog('seen', 0)).toBe('');
    expect(calls).toEqual([
      `attempt seen 1 ${traceparent}`,
      'stage files=0 error=undefined',
      'step 0 echo "$JW_OBSERVED" > out.txt',
      'step-end 0 success 0',
      'step 1 exit 4',
      'step-end 1 failed 4',
      'sync files=1 bytes=7',
      'end failed 4 STEP_FAILED',
      'waiting 1',
      'waiting -1',
      'rejected BAD_REQUEST bad',
    ]);
  });

  it('turns a handler’s ctx.progress into rate-limited events, the last always sent, kept in the manifest', async () => {
    const transport = createMemoryTransport([{ id: 'p', steps: [{ uses: 'work' }] }], {
      ended: true,
    });
    const events: JobEvent[] = [];
    const worker = createWorker({
      transport,
      jobsDir: box.jobsDir,
      workspacesDir: box.workspacesDir,
      env: {},
      handlers: [
        defineHandler({
          name: 'work',
          schema: z.object({}),
          run(ctx) {
            ctx.progress(10, 'first');
            ctx.progress(20, 'held, then replaced');
            ctx.progress(30, 'last');
          },
        }),
      ],
    });
    worker.on('event', (e) => events.push(e));
    await worker.run();
    const progress = events.filter((e) => e.progress).map((e) => e.progress);
    expect(progress).toMatchObject([
      { percent: 10, message: 'first', step: { index: 0, name: 'work' } },
      { percent: 30, message: 'last', step: { index: 0, name: 'work' } },
    ]);
    for (const e of events.filter((x) => x.progress)) expect(e.state).toBe('running');
    // The last report goes out before the job's final event.
    expect(events.at(-1)!.state).toBe('success');
    expect((await box.readResult('p')).progress).toMatchObject({ percent: 30, message: 'last' });
  });
});
