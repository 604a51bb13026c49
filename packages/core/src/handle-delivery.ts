import { deadLetter, rejectBadRequest } from './dead-letter.js';
import type { DeliveryHost } from './delivery-host.js';
import { ErrorCode, isJwError, toJwError } from './errors.js';
import type { JobEvent } from './events.js';
import type { JobOutcome } from './job-outcome.js';
import {
  BadRequestError,
  DEFAULT_MAX_REQUEST_BYTES,
  type JobRequest,
  parseRequest,
} from './request.js';
import type { Delivery } from './transport.js';

/**
 * The step runner (execa among it), loaded with the first job so that an idle worker does
 * not hold it; a one-shot worker loads it while it connects (worker.ts).
 */
export const loadStepRunner = () => import('./run-job.js');

/** Parses one delivery, runs its job and settles the delivery by the job's outcome. */
export async function handleDelivery(host: DeliveryHost, delivery: Delivery): Promise<void> {
  let request: JobRequest;
  try {
    request = parseRequest(
      delivery.body,
      host.options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    );
  } catch (error) {
    await rejectBadRequest(host, delivery, toJwError(error, ErrorCode.BAD_REQUEST));
    return;
  }
  const outcome = await run(host, delivery, request);
  if (outcome) await settleOutcome(host, delivery, request.id, outcome);
}

/** Runs the job; undefined when the request was rejected as bad. */
async function run(
  host: DeliveryHost,
  delivery: Delivery,
  request: JobRequest,
): Promise<JobOutcome | undefined> {
  const o = host.options;
  const abort = new AbortController();
  // A second delivery of a running id does not take over the first one's cancel.
  const owner = !host.jobs.has(request.id);
  if (owner) host.jobs.set(request.id, abort);
  try {
    host.logger.info({ jobId: request.id, delivery: delivery.label }, 'job received');
    const { runJob, StepLauncher } = await loadStepRunner();
    // A worker that takes more than one job starts its plain steps from a launcher, not
    // from forks of itself (step-launcher.ts); steps as another user or in a cgroup cannot.
    if (o.maxJobs !== 1 && !o.runAs && !o.cgroup) StepLauncher.want();
    return await runJob(request, {
      jobsDir: o.jobsDir,
      workspacesDir: o.workspacesDir,
      worker: host.info,
      leaseMs: o.leaseMs,
      killGraceMs: o.killGraceMs,
      ...(o.jobTimeoutMs ? { defaultTimeoutMs: o.jobTimeoutMs } : {}),
      env: o.env ?? process.env,
      secretEnv: o.secretEnv ?? [],
      ...(o.handlers ? { handlers: o.handlers } : {}),
      ...(o.limits ? { limits: o.limits } : {}),
      ...(o.runAs ? { runAs: o.runAs } : {}),
      ...(o.cgroup ? { cgroup: o.cgroup } : {}),
      signal: abort.signal,
      logger: host.logger,
      resultsRetries: o.resultsRetries,
      resultsBackoffMs: o.resultsBackoffMs,
      ...(delivery.claim ? { claim: delivery.claim } : {}),
      ...(o.observers ? { observers: o.observers } : {}),
      ...(delivery.claimed ? { onClaimed: () => delivery.claimed?.() } : {}),
      onEvent: (event) => forward(host, delivery, event),
    });
  } catch (error) {
    if (isJwError(error, ErrorCode.BAD_REQUEST) || error instanceof BadRequestError) {
      await rejectBadRequest(host, delivery, error);
      return undefined;
    }
    return { kind: 'unwritable', error: toJwError(error, ErrorCode.RESULTS_UNWRITABLE) };
  } finally {
    if (owner) host.jobs.delete(request.id);
  }
}

async function settleOutcome(
  host: DeliveryHost,
  delivery: Delivery,
  jobId: string,
  outcome: JobOutcome,
): Promise<void> {
  const { logger } = host;
  switch (outcome.kind) {
    case 'finished':
      await settleFinished(host, delivery, jobId, outcome);
      return;
    case 'busy':
      logger.info({ jobId, retryInMs: outcome.retryInMs }, 'job claimed elsewhere; given back');
      host.observer.released('busy');
      await host.settle('release', () => delivery.release('busy', outcome.retryInMs));
      return;
    case 'requeued':
      logger.info({ jobId }, 'job given back on shutdown');
      host.observer.released('shutdown');
      await host.settle('release', () => delivery.release('shutdown', 0));
      return;
    case 'unwritable':
      await deadLetter(host, delivery, jobId, outcome.error);
      return;
    case 'failed':
      logger.error(
        { jobId, code: outcome.error.code, err: outcome.error.message },
        'this worker cannot run jobs now; given back, taking no work until it can',
      );
      if (outcome.error.code === ErrorCode.WORKSPACES_UNWRITABLE) host.pause(outcome.error);
      host.observer.released('failed');
      await host.settle('release', () => delivery.release('failed', outcome.retryInMs));
      return;
  }
}

/** A job with a result: counted, its result handed over, then its claim and workspace go. */
async function settleFinished(
  host: DeliveryHost,
  delivery: Delivery,
  jobId: string,
  outcome: Extract<JobOutcome, { kind: 'finished' }>,
): Promise<void> {
  const { logger, tally } = host;
  tally.counted++;
  if (outcome.result.manifestFile !== null && !outcome.result.replayed) {
    tally.recorded++;
    tally.unwritableStreak = 0;
  }
  tally.results.push(outcome.result);
  logger.debug(
    { jobId, status: outcome.result.status, replayed: outcome.result.replayed },
    'job done',
  );
  host.observer.resultWaiting(1);
  let taken = false;
  let out!: () => void;
  const published = new Promise<void>((resolve) => {
    out = resolve;
  });
  // The claim that kept the result recoverable goes once the result is taken, or just
  // before the ack where the broker keeps an unacknowledged delivery (Delivery.complete).
  let released: Promise<void> | undefined;
  const release = () => {
    out();
    released ??= (outcome.delivered?.() ?? Promise.resolve()).catch((error) =>
      logger.warn({ err: error, jobId }, 'could not remove the claim'),
    );
    return released;
  };
  const completing = host.settle('complete', async () => {
    await delivery
      .complete(outcome.result, outcome.manifest, release)
      .finally(() => host.observer.resultWaiting(-1));
    taken = true;
  });
  // The job's slot is free once its result is out (taken, or published where the ack
  // follows): the next job does not wait for this one's ack, claim and workspace to go
  // (the worker waits for them before it ends).
  await Promise.race([completing, published]);
  host.afterwards(async () => {
    await completing;
    if (taken) await release();
    host.events.emit('result', outcome.result);
    await outcome
      .settled?.()
      .catch((error) => logger.warn({ err: error, jobId }, 'could not remove the workspace'));
  });
}

/** A job event goes to the worker's listeners and, not waited for, to the transport. */
function forward(host: DeliveryHost, delivery: Delivery, event: JobEvent): void {
  host.events.emit('event', event);
  if (!delivery.onEvent) return;
  Promise.resolve()
    .then(() => delivery.onEvent?.(event))
    .catch((error) =>
      host.logger.warn({ err: error, jobId: event.jobId }, 'progress event not delivered'),
    );
}
