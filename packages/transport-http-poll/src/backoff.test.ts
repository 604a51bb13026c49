import { describe, expect, it } from 'vitest';
import { Backoff, sleep } from './backoff.js';

describe('Backoff', () => {
  it('doubles up to the maximum, each wait between half and all of the step', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000 });
    const steps = [100, 200, 400, 800, 1_000, 1_000];
    for (const step of steps) {
      const wait = backoff.next();
      expect(wait).toBeGreaterThanOrEqual(step / 2);
      expect(wait).toBeLessThanOrEqual(step);
    }
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(100);
  });

  it('spreads agents that failed together', () => {
    const waits = new Set(
      Array.from({ length: 20 }, () => new Backoff({ initialMs: 10_000, maxMs: 10_000 }).next()),
    );
    expect(waits.size).toBeGreaterThan(10);
  });

  it('sleep ends early on abort', async () => {
    const controller = new AbortController();
    const slept = sleep(60_000, controller.signal);
    controller.abort();
    expect(await slept).toBe(false);
    expect(await sleep(1)).toBe(true);
  });
});
