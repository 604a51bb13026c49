import type { Logger } from '@jw/core';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { subjectMatches } from './subjects.js';

export type PublishMode = 'jetstream' | 'core';

/** Every stream event of the account: created, updated, deleted (and leader changes, harmless). */
const STREAM_ADVISORIES = '$JS.EVENT.ADVISORY.STREAM.*.*';
/** Learnt captures are asked again after this, for accounts that may not read advisories. */
export const RELEARN_AFTER_MS = 30_000;

interface Learnt {
  /** Subjects of the streams that overlap the family. */
  captures: string[];
  until: number;
}

export interface PublishModesOptions {
  /**
   * Wildcard subjects whose members are learnt together (`jobs.results.>`): a result
   * subject is new for every job, the streams capturing them are not.
   */
  families?: readonly string[];
  relearnAfterMs?: number;
}

/**
 * Which way a subject is published: through JetStream when a stream captures it, else
 * plainly. Learnt once per subject family with one stream list (not one request per
 * publish), and learnt again when a stream advisory says the streams changed, when a
 * publish fails, or after `relearnAfterMs`.
 */
export class PublishModes {
  private readonly learnt = new Map<string, Learnt>();
  /** Bumped by `forget`, so an answer asked for before a change is not kept after it. */
  private generation = 0;
  private readonly families: readonly string[];
  private readonly relearnAfterMs: number;

  constructor(
    private readonly jsm: JetStreamManager,
    { families = [], relearnAfterMs = RELEARN_AFTER_MS }: PublishModesOptions = {},
  ) {
    this.families = families;
    this.relearnAfterMs = relearnAfterMs;
  }

  async modeOf(subject: string): Promise<PublishMode> {
    const captures = await this.capturesOf(this.familyOf(subject));
    return captures.some((s) => subjectMatches(s, subject)) ? 'jetstream' : 'core';
  }

  /** Forgets what was learnt of `subject`'s family, or of every subject. */
  forget(subject?: string): void {
    this.generation++;
    if (subject === undefined) this.learnt.clear();
    else this.learnt.delete(this.familyOf(subject));
  }

  /**
   * Forgets everything on each stream advisory, so a stream created, changed or deleted
   * takes effect at the next publish. Without permission to read them the relearning
   * period still applies.
   */
  watch(nc: NatsConnection, logger: Logger, onChange?: (subject: string) => void): Subscription {
    return nc.subscribe(STREAM_ADVISORIES, {
      callback: (error, msg) => {
        if (error) {
          logger.debug({ err: error }, 'stream advisories not readable; publish modes age out');
          return;
        }
        this.forget();
        onChange?.(msg.subject);
      },
    });
  }

  private familyOf(subject: string): string {
    return this.families.find((f) => subjectMatches(f, subject)) ?? subject;
  }

  private async capturesOf(family: string): Promise<string[]> {
    const known = this.learnt.get(family);
    if (known && known.until > Date.now()) return known.captures;
    const generation = this.generation;
    const captures: string[] = [];
    // The server lists the streams whose subjects overlap the family's.
    for await (const info of this.jsm.streams.list(family)) {
      captures.push(...(info.config.subjects ?? []));
    }
    if (generation === this.generation) {
      this.learnt.set(family, { captures, until: Date.now() + this.relearnAfterMs });
    }
    return captures;
  }
}
