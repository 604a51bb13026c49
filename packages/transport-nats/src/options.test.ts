import { describe, expect, it } from 'vitest';
import { resolveNatsOptions } from './options.js';

describe('resolveNatsOptions', () => {
  it('fills the defaults of the worker it replaces', () => {
    const o = resolveNatsOptions({});
    expect(o).toMatchObject({
      url: 'nats://localhost:4222',
      stream: 'JOBS',
      inputSubject: 'jobs.pending',
      outputSubject: 'jobs.results',
      deadLetterSubject: 'jobs.dead',
      ackWaitMs: 30_000,
      workingIntervalMs: 10_000,
    });
  });

  it.each([
    [{ inputSubject: 'jobs pending' }],
    [{ outputSubject: 'jobs.>' }],
    [{ stream: 'A.B' }],
    [{ ackWaitMs: 500 }],
    [{ maxDeliver: 0 }],
    [{ ackWaitMs: 5_000, workingIntervalMs: 5_000 }],
    [{ reconnectAttempts: -2 }],
  ])('refuses %j as BAD_CONFIG', (options) => {
    expect(() => resolveNatsOptions(options)).toThrow(
      expect.objectContaining({ code: 'BAD_CONFIG' }),
    );
  });
});
