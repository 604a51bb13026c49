import path from 'node:path';
import type { Delivery } from '@jw/core';
import type { AgentState } from './agent-state.js';
import { deliveryOf } from './job-delivery.js';
import { parseNextJob, requestOf } from './job-payload.js';

export type PollOutcome =
  | { kind: 'job'; delivery: Delivery }
  /** 204: nothing to do. */
  | { kind: 'empty' }
  /**
   * A job that could not run was reported failed; poll again soon, backing off
   * so a backend that hands out the same bad job forever is not hammered.
   */
  | { kind: 'skipped' }
  /** No usable answer: back off. */
  | { kind: 'error' };

/** One `next-job` call at a time, and what its answer means. */
export class Poller {
  #failures = 0;
  #answered = false;

  /** The last `next-job` call got an answer (a job or 204); false until the first does. */
  get reachable(): boolean {
    return this.#answered && this.#failures === 0;
  }

  constructor(private readonly a: AgentState) {}

  async poll(): Promise<PollOutcome> {
    const { a } = this;
    let text: string | undefined;
    try {
      text = await a.client.nextJob(a.context.workerId);
    } catch (error) {
      this.#failed(error instanceof Error ? error.message : String(error));
      return { kind: 'error' };
    }
    if (this.#failures > 0) a.logger.info({ failures: this.#failures }, 'backend answers again');
    this.#failures = 0;
    this.#answered = true;
    if (text === undefined) return { kind: 'empty' };
    const parsed = parseNextJob(text);
    if (parsed.kind === 'garbage') {
      this.#failed(`next-job: ${parsed.reason}`);
      return { kind: 'error' };
    }
    if (parsed.kind === 'invalid') {
      await this.#reportUnrunnable(parsed.jobId, parsed.reason);
      return { kind: 'skipped' };
    }
    let body: ReturnType<typeof requestOf>;
    try {
      body = requestOf(parsed.job, a.options);
    } catch (error) {
      await this.#reportUnrunnable(parsed.job.jobId, (error as Error).message);
      return { kind: 'skipped' };
    }
    a.logger.info({ jobId: parsed.job.jobId, jobName: parsed.job.jobName }, 'received job');
    await a.inFlight.add(parsed.job.jobId, path.join(a.context.jobsDir, parsed.job.jobId));
    return { kind: 'job', delivery: deliveryOf(a, parsed.job, body) };
  }

  #failed(reason: string): void {
    const { logger } = this.a;
    // The first failure of an outage is a warning; the rest would flood the log.
    const log = this.#failures === 0 ? logger.warn : logger.debug;
    log.call(logger, { reason, failures: this.#failures + 1 }, 'polling failed; backing off');
    this.#failures++;
  }

  async #reportUnrunnable(jobId: string, reason: string): Promise<void> {
    const { a } = this;
    a.logger.warn({ jobId, reason }, 'job cannot run; reporting it failed');
    a.last = { jobId, status: 'failed' };
    await a.outbox.send({
      job_id: jobId,
      status: 'failed',
      worker_id: a.context.workerId,
      error: reason,
    });
  }
}
