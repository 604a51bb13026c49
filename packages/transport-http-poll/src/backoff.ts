import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Growth per failure; 2 doubles. */
  factor?: number;
}

/**
 * Exponential back-off with "equal jitter": each delay is half the current step
 * plus a random share of the other half, so agents that lost the same backend do
 * not all come back in the same millisecond.
 */
export class Backoff {
  private failures = 0;
  private readonly factor: number;

  constructor(private readonly options: BackoffOptions) {
    this.factor = options.factor ?? 2;
  }

  /** The delay before the next try; each call counts one more failure. */
  next(): number {
    const step = Math.min(
      this.options.maxMs,
      this.options.initialMs * this.factor ** this.failures,
    );
    this.failures++;
    return Math.round(step / 2 + Math.random() * (step / 2));
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}

/** Waits `ms`, or less when `signal` aborts. Resolves true when the full time passed. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
    return true;
  } catch {
    return false;
  }
}
