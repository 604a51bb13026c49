import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineHandler } from '../define-handler.js';
import { runStep } from '../run-steps.js';
import { StepLog } from '../step-log.js';
import type { StepProgress } from './types.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(async () => {
  await box.cleanup();
});

const SECRET = 'hunter2-secret';

// Writes the secret split across two writes, reports it as progress and output, then fails.
const leaky = defineHandler({
  name: 'leaky',
  schema: z.object({}),
  async run(ctx) {
    ctx.log.write(`a ${SECRET.slice(0, 5)}`);
    await new Promise((resolve) => setImmediate(resolve));
    ctx.log.write(`${SECRET.slice(5)} b\n`);
    ctx.log.stream.write(`stream ${SECRET}\n`);
    ctx.progress(50, `half of ${SECRET}`);
    return { exitCode: 2, error: `failed with ${SECRET}`, output: { token: SECRET } };
  },
});

async function runLeaky(secrets: string[]) {
  const log = await StepLog.create(box.root, 0);
  const progress: StepProgress[] = [];
  try {
    const outcome = await runStep(
      { index: 0, name: 'leaky', uses: 'leaky', with: {}, env: {}, continueOnError: false },
      {
        workspace: box.workspacesDir,
        env: {},
        log,
        signal: new AbortController().signal,
        killGraceMs: 300,
        handlers: { leaky },
        secrets,
        onProgress: (p) => progress.push(p),
      },
    );
    return { outcome, progress, text: await readFile(path.join(box.root, 'step_0.log'), 'utf8') };
  } finally {
    await log.close();
  }
}

describe('a handler step with secrets', () => {
  it('masks its log (a value split across writes too) and its output', async () => {
    const { outcome, text } = await runLeaky([SECRET]);
    expect(text).toBe('a *** b\nstream ***\nprogress 50% half of ***\n');
    expect(outcome.output).toEqual({ token: '***' });
    // The error text is masked with the step's record (attempt-steps), like a shell step's.
    expect(outcome).toMatchObject({ status: 'failed', exitCode: 2 });
  });

  it('without secrets writes as is', async () => {
    const { text, progress } = await runLeaky([]);
    expect(text).toContain(`a ${SECRET} b\n`);
    // Progress is masked where it leaves the attempt (attempt-watch), for every kind of step.
    expect(progress).toEqual([{ percent: 50, message: `half of ${SECRET}` }]);
  });
});
