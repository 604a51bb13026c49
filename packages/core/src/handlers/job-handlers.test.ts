import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../define-handler.js';
import { silentLogger } from '../logger.js';
import { createMemoryTransport } from '../memory-transport.js';
import { parseRequest } from '../request.js';
import { runJob } from '../run-job.js';
import type { RunJobOptions } from '../run-job-options.js';
import { createWorker } from '../worker.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

async function run(body: Record<string, unknown>, extra: Partial<RunJobOptions> = {}) {
  await box.makeJob(String(body.id));
  const outcome = await runJob(parseRequest(body), {
    jobsDir: box.jobsDir,
    workspacesDir: box.workspacesDir,
    worker: { id: 'w1', hostname: 'h', pid: process.pid, transport: 'test', version: '1.0.0' },
    leaseMs: 10_000,
    killGraceMs: 300,
    env: { PATH: process.env.PATH ?? '' },
    logger: silentLogger,
    ...extra,
  });
  if (outcome.kind === 'finished') {
    await outcome.delivered?.();
    await outcome.settled?.();
  }
  return box.readResult(String(body.id));
}

describe('handlers in a job', () => {
  it('run the built-ins with no handlers given, and record a handler output in the manifest', async () => {
    const count = defineHandler({
      name: 'count',
      schema: z.object({ to: z.number().int() }),
      run: (_ctx, { to }) => ({ output: { counted: to } }),
    });
    const m = await run(
      {
        id: 'mixed',
        steps: [
          'echo shell',
          { uses: 'echo', with: { message: 'built in' } },
          { name: 'n', uses: 'count', with: { to: 3 } },
        ],
      },
      { handlers: [count] },
    );
    expect(m).toMatchObject({ status: 'success', exitCode: 0 });
    expect(m.steps.map((s: { command: string }) => s.command)).toEqual([
      'echo shell',
      'uses: echo',
      'uses: count',
    ]);
    expect(m.steps[1].output).toBeUndefined();
    expect(m.steps[2].output).toEqual({ counted: 3 });
    expect(await box.readLog('mixed', 1)).toBe('built in\n');
  });

  it('make a job with an unknown handler or a bad input a BAD_JOB before any step runs', async () => {
    const unknown = await run({ id: 'unknown', steps: ['touch ran', { uses: 'nope' }] });
    expect(unknown).toMatchObject({ status: 'error', errorCode: 'BAD_JOB', steps: [] });
    expect(unknown.error).toMatch(/step 1 uses unknown handler "nope"/);
    const bad = await run({ id: 'bad', steps: [{ uses: 'sleep', with: { seconds: 'long' } }] });
    expect(bad).toMatchObject({ status: 'error', errorCode: 'BAD_JOB', steps: [] });
    expect(bad.error).toMatch(/step 0 \(sleep\): bad input for "sleep": with\.seconds/);
  });

  it('are checked when the worker is made: doubled or malformed ones are BAD_CONFIG', () => {
    const h = defineHandler({ name: 'h', schema: z.object({}), run: () => {} });
    const base = {
      transport: createMemoryTransport(),
      jobsDir: box.jobsDir,
      workspacesDir: box.workspacesDir,
    };
    expect(() => createWorker({ ...base, handlers: [h, h] })).toThrow(/two handlers are named "h"/);
    expect(() => createWorker({ ...base, handlers: { x: {} as never } })).toThrow(
      /handler "x" must be made by defineHandler\(\) or be a function/,
    );
    expect(() => createWorker({ ...base, handlers: [h] })).not.toThrow();
  });
});
