import type { IPublishPacket } from 'mqtt';
import type { Held } from './held.js';
import type { Session } from './session.js';

/** What to do with a request message that just arrived. */
export type Arrival =
  /** A request not seen before: hold it. */
  | 'new'
  /** The re-sent copy (DUP) of a request already held: its PUBACK now goes on this connection. */
  | 'merged'
  /** The re-sent copy of a request whose PUBACK was due while its connection was down: PUBACK now. */
  | 'acked';

/**
 * PUBACKs of requests (SPEC 6: the claim exists before the request is acknowledged).
 * A PUBACK is sent once, on the connection that delivered the request. When a
 * connection drops, a resumed session re-sends every unacknowledged request (DUP, same
 * packet id): the copy is matched to the request the worker already holds, which
 * then acknowledges on the new connection, and nothing runs twice.
 */
export class Acks {
  /** Requests held (queued, running before their claim, waiting to retry) without a PUBACK yet. */
  readonly #unacked = new Set<Held>();
  /** Packet ids whose PUBACK was due while their connection was down, by payload. */
  readonly #owed = new Map<number, Buffer>();

  constructor(readonly session: Session) {}

  /** A new connection. A session the broker did not keep re-sends nothing: nothing is owed. */
  onConnack(sessionPresent: boolean): void {
    if (!sessionPresent) this.#owed.clear();
  }

  /** Sorts out re-sent copies; call for every request message before holding it. */
  arrived(packet: IPublishPacket, body: Buffer): Arrival {
    const id = packet.messageId;
    if (packet.qos === 0 || id === undefined) return 'new';
    if (!packet.dup) {
      // The broker reuses an id only once our PUBACK for it arrived.
      this.#owed.delete(id);
      return 'new';
    }
    const generation = this.session.generation;
    for (const held of this.#unacked) {
      if (held.messageId === id && held.generation < generation && held.body.equals(body)) {
        held.generation = generation;
        return 'merged';
      }
    }
    if (this.#owed.get(id)?.equals(body)) {
      this.#owed.delete(id);
      return 'acked';
    }
    return 'new';
  }

  /** A request now held without a PUBACK. */
  hold(held: Held): void {
    if (!held.acked) this.#unacked.add(held);
  }

  /** No longer held, and not acknowledged either: left to the persistent session. */
  forget(held: Held): void {
    this.#unacked.delete(held);
  }

  /**
   * Acknowledges a request (once). On a connection since lost the PUBACK is owed: the
   * broker re-sends the request on the resumed session and `arrived` acknowledges it.
   */
  ack(held: Held): void {
    if (held.acked) return;
    held.acked = true;
    this.#unacked.delete(held);
    if (held.kind !== 'mqtt' || held.qos === 0 || held.messageId === undefined) return;
    const session = this.session;
    if (session.connected && held.generation === session.generation) {
      session.puback(held.messageId);
    } else if (held.generation >= session.sessionStart) {
      this.#owed.set(held.messageId, held.body);
    }
  }
}
