import type { EventEmitter } from 'node:events';
import type { DeadLetterFile } from './dead-letter-file.js';
import type { JwError } from './errors.js';
import type { Logger } from './logger.js';
import type { ResultMessage, WorkerInfo } from './manifest.js';
import type { CombinedObserver } from './observer.js';
import type { ResolvedWorkerOptions, WorkerEvents } from './worker-options.js';

/** Counts kept over a worker's run, for its summary and its fault rules (SPEC 10). */
export interface WorkerTally {
  /** Deliveries that ended with a result message (run, replayed or dead-lettered). */
  counted: number;
  rejected: number;
  /** Jobs dead-lettered because their results/ could not be written; in a row. */
  unwritable: number;
  unwritableStreak: number;
  /** Jobs whose run was recorded on the drive. */
  recorded: number;
  results: ResultMessage[];
}

export function newTally(): WorkerTally {
  return { counted: 0, rejected: 0, unwritable: 0, unwritableStreak: 0, recorded: 0, results: [] };
}

/** What handling one delivery needs of the worker that took it. */
export interface DeliveryHost {
  readonly options: ResolvedWorkerOptions;
  readonly info: WorkerInfo;
  readonly logger: Logger;
  /** The abort of each running job, by id. */
  readonly jobs: Map<string, AbortController>;
  readonly tally: WorkerTally;
  /** The dead-letter file, when one is set. */
  readonly deadLetters: DeadLetterFile | undefined;
  readonly events: EventEmitter<WorkerEvents>;
  /** The worker's observers, combined (metrics, traces). */
  readonly observer: CombinedObserver;
  /** Runs a transport call that settles a delivery; a failure there is a worker fault. */
  settle(what: string, call: () => Promise<void>): Promise<void>;
  /**
   * Work that follows a job but must not hold its slot (removing its claim and workspace
   * once its result is taken); the worker waits for it before `run()` ends.
   */
  afterwards(work: () => Promise<void>): void;
  /** The workspaces dir cannot be written: take no work until it can. */
  pause(error: JwError): void;
  /** A fault of the worker: it stops taking work and `run()` fails with the first one. */
  fault(error: JwError): void;
}
