import type { TransportContext } from '@jw/core';
import type { Postponed } from './postponed.js';
import type { QueueDirs } from './queue-dirs.js';

/** What the parts of a started file transport share. */
export interface QueueState {
  readonly dirs: QueueDirs;
  /** The queue root with links resolved: a link in pending/ must point inside it. */
  readonly root: string;
  readonly context: TransportContext;
  /** Taken by this worker (names in processing/) and not settled yet. */
  readonly inFlight: Set<string>;
  readonly postponed: Postponed;
  /** Entries that could not be moved out of pending/ (by inode), so they are not retried. */
  readonly stuck: Map<string, number>;
  /** `pending/{name}` may be a request to take: `next` looks at it. */
  addCandidate(name: string): void;
  /** A job started or ended: the heartbeat file is rewritten now. */
  beat(): void;
}
