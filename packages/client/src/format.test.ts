import { describe, expect, it } from 'vitest';
import { eventLine } from './format.js';

const base = { jobId: 'j', attempt: 1, workerId: 'w', at: '2026-12-02T00:00:00.000Z' };

describe('eventLine', () => {
  it('shows a state change with its step, and a progress report with its step', () => {
    expect(
      eventLine({ ...base, state: 'running', step: { index: 0, name: 'build', logFile: '/l' } }),
    ).toBe('jw: j running step 0 (build)');
    expect(
      eventLine({
        ...base,
        state: 'running',
        progress: { percent: 40, message: 'compiling', step: { index: 1, name: 'test' }, at: '' },
      }),
    ).toBe('jw: j step 1 (test) 40% compiling');
    expect(
      eventLine({ ...base, state: 'running', progress: { step: { index: 0, name: 'b' }, at: '' } }),
    ).toBe('jw: j step 0 (b)');
  });
});
