import type { ClaimAttempt } from './claim.js';
import type { JwError } from './errors.js';
import type { JobEvent } from './events.js';
import type { Logger } from './logger.js';
import type { Manifest, ResultMessage } from './manifest.js';
import type { RequestBody } from './request.js';

/** Why a delivery is given back instead of run. */
export type ReleaseReason =
  /** Another worker holds a fresh claim on the job; try again after the rest of its lease. */
  | 'busy'
  /** This worker is stopping and did not finish the job. */
  | 'shutdown'
  /** A transient infrastructure failure (shared drive unavailable); try again later. */
  | 'failed';

/**
 * One request handed from a transport to the worker. Exactly one of `complete`,
 * `reject` or `release` is called, once, after which the delivery is settled.
 * A transport that holds deliveries open (NATS) keeps them alive on its own timer
 * until settled; one that cannot (MQTT) has already acknowledged on receipt.
 */
export interface Delivery {
  /** The request as received: raw bytes or text (core parses and validates) or an object. */
  readonly body: RequestBody;
  /**
   * The request exactly as received, when `body` is not it (a file's text given as an
   * object with the id filled in). Recorded in the dead-letter file.
   */
  readonly raw?: Uint8Array | string;
  /** A short label for logs: a message sequence, a file name. */
  readonly label?: string;
  /** Every state change of the job, in order. Failures here are logged, never fail the job. */
  onEvent?(event: JobEvent): void | Promise<void>;
  /**
   * The job's claim now exists on the drive (SPEC 6: claim before ack). A transport that
   * acknowledges on receipt (MQTT) acknowledges here. Called at most once, before the
   * delivery is settled. A delivery that never claims (rejected, replayed, busy, a job dir
   * that does not exist) is not told: its settlement acknowledges.
   */
  claimed?(): void | Promise<void>;
  /**
   * A claim the transport took before handing the delivery over (a recovered job, so that
   * one worker takes it). The job runs under it instead of claiming again.
   */
  claim?: Extract<ClaimAttempt, { kind: 'claimed' }>;
  /**
   * The job ended with a final status (a failed job is a handled job), or it had
   * already finished and `result.replayed` is set. `result.json` is final when this
   * is called: publish the result, flush, then acknowledge. Resolve only once the result
   * is taken (broker ack, outbox file written): the job's claim stays on the drive until
   * then, so a worker killed meanwhile leaves the result to be sent again by recovery.
   *
   * `published`: a transport whose broker redelivers until acknowledged (NATS) calls it
   * once the result is published and before the ack. The claim goes there, while the
   * unacknowledged delivery still keeps the job recoverable (killed between the two, the
   * job is delivered again and its stored result replayed), so no claim outlives an
   * acknowledged job. The job's slot is free from then on: the worker takes its next job
   * while the ack is under way. Other transports leave it: the claim goes, and the slot
   * frees, once they resolve.
   */
  complete(
    result: ResultMessage,
    manifest: Manifest | undefined,
    published?: () => Promise<void>,
  ): Promise<void>;
  /**
   * The request can never run (BAD_REQUEST). Publish `result` when it is given (the
   * id is known and safe), record the raw body and the reason on the dead-letter
   * output, and acknowledge so it is not redelivered.
   */
  reject(error: JwError, result: ResultMessage | undefined): Promise<void>;
  /** Not run to the end: give it back to be delivered again after `delayMs`. */
  release(reason: ReleaseReason, delayMs: number): Promise<void>;
}

/** What the worker gives a transport when it starts. */
export interface TransportContext {
  workerId: string;
  jobsDir: string;
  concurrency: number;
  /** Claim lease (SPEC 6), for a transport that claims recovered jobs itself. Set by the worker. */
  leaseMs?: number;
  logger: Logger;
  /** Cancels a job this worker runs (a cancel message, a backend's stop). False when it runs no such job. */
  cancelJob(jobId: string, reason?: string): boolean;
  /** Ids of the jobs running now (for heartbeats and status polls). */
  activeJobs(): string[];
  /** Aborted when the worker is told to stop: a `start` still connecting should give up. */
  signal: AbortSignal;
  /** The worker's version, for heartbeats. Set by the worker. */
  version?: string;
}

/**
 * A source of job requests: MQTT, NATS JetStream, HTTP polling, a folder.
 *
 * Contract:
 * - `start` connects and prepares (creates streams, subscriptions, folders). It
 *   rejects with a JwError (BAD_CONFIG, TRANSPORT_FAILED) when it cannot, and
 *   gives up when `context.signal` aborts (the worker is stopping).
 * - `next(signal)` is called only while the worker has a free slot and wants a job,
 *   and never twice at once. It resolves with one delivery, or with `null` when the
 *   signal aborts or the source has ended for good (a drained one-shot source). A
 *   transport never takes from its broker more than it has been asked for: a message
 *   that arrives when no `next` is waiting is left to the broker or given back.
 *   It rejects only on a fault that will not heal (TRANSPORT_FAILED).
 * - Settling a delivery (`complete`, `reject`, `release`) is awaited by the worker;
 *   a transport that cannot deliver a result right away (broker down) keeps it and
 *   retries, resolving once it is delivered or safely stored.
 * - `stop` is called after every delivery is settled: flush what is pending, say
 *   goodbye (status offline), close connections. Deliveries taken but never handed
 *   to `next` must be given back here.
 *
 * `describeTransportConformance` in `@jw/conformance` is the
 * executable form of this contract; every transport that delivers SPEC 2 requests runs it.
 */
export interface Transport {
  /** Recorded as `worker.transport` in the manifest. */
  readonly name: string;
  /** Env var names that hold this transport's credentials; never passed to steps. */
  readonly secretEnv?: readonly string[];
  start(context: TransportContext): Promise<void>;
  /**
   * Whether the broker or backend is reachable now (for readiness and metrics). A
   * transport with nothing to lose (a folder) leaves it out. False before `start`.
   */
  connected?(): boolean;
  next(signal: AbortSignal): Promise<Delivery | null>;
  stop(): Promise<void>;
}
