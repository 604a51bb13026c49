import { randomBytes } from 'node:crypto';
import type { Acks } from './acks.js';
import type { Held } from './held.js';
import type { Publisher } from './publisher.js';

/** Publishes a request again (to its own topic, so the broker routes it anew), then acknowledges it. */
export async function giveBack(publisher: Publisher, acks: Acks, held: Held): Promise<void> {
  if (held.kind !== 'mqtt') return;
  await publisher.publish(held.topic, held.body, false);
  acks.ack(held);
  publisher.session.logger.info({ topic: held.topic }, 'gave a request back to the broker');
}

const MARKER_WAIT_MS = 10_000;

/**
 * A clean session loses whatever the broker queued for it, and Mosquitto hands a
 * shared-subscription message to one member at publish time. So: unsubscribe, give
 * back what we hold, then publish a marker to ourselves: it is queued behind every
 * request the broker still had for us, so when it arrives all of them were given back.
 */
export class CleanDrain {
  #draining = false;
  #waiter: { nonce: string; resolve(): void } | undefined;

  constructor(
    readonly publisher: Publisher,
    readonly acks: Acks,
    /** `workers/{id}/drain`, subscribed (clean sessions only) for the marker. */
    readonly topic: string,
  ) {}

  /** While draining, every request that still arrives is given back. */
  get draining(): boolean {
    return this.#draining;
  }

  /** A message on the drain topic: the marker, if it is ours. */
  onMarker(payload: Buffer | string): void {
    const waiter = this.#waiter;
    if (waiter && String(payload) === waiter.nonce) waiter.resolve();
  }

  async run(held: Held[]): Promise<void> {
    const publisher = this.publisher;
    const session = publisher.session;
    this.#draining = true;
    await session.client.unsubscribeAsync(session.options.topic);
    for (const h of held) await giveBack(publisher, this.acks, h);
    const nonce = randomBytes(8).toString('hex');
    const arrived = new Promise<void>((resolve) => {
      this.#waiter = { nonce, resolve };
    });
    await publisher.publish(this.topic, nonce, false);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        session.logger.warn(
          {},
          'MQTT drain marker did not come back; some queued requests may be lost',
        );
        resolve();
      }, MARKER_WAIT_MS);
    });
    await Promise.race([arrived, timedOut]);
    clearTimeout(timer);
    await publisher.settled(10_000);
  }
}
