import type { Delivery, Logger, TransportContext } from '@jw/core';
import type { AgentClient } from './agent-client.js';
import type { Heartbeat } from './heartbeat.js';
import type { InFlight } from './in-flight.js';
import type { ResolvedHttpPollOptions } from './options.js';
import type { StatusOutbox } from './status-outbox.js';
import type { FinalAgentStatus } from './status-words.js';

/** What the parts of a started HTTP polling transport share. */
export interface AgentState {
  readonly options: ResolvedHttpPollOptions;
  readonly client: AgentClient;
  readonly context: TransportContext;
  readonly logger: Logger;
  /** Final statuses, kept on disk until the backend took them. */
  readonly outbox: StatusOutbox;
  /** Jobs taken and not settled, on disk so a restart finds those that ended meanwhile. */
  readonly inFlight: InFlight;
  readonly heartbeat: Heartbeat;
  /** Deliveries handed out and not settled, with their job ids. */
  readonly running: Map<Delivery, string>;
  /** The last final status reported, for the heartbeat. */
  last: { jobId: string; status: FinalAgentStatus } | undefined;
}
