import type { ClaimAttempt } from '@jw/core';
import type { IPublishPacket } from 'mqtt';

export type HeldClaim = Extract<ClaimAttempt, { kind: 'claimed' }>;

/** A request waiting for the worker: a broker message (not yet acknowledged) or a recovered job. */
export interface Held {
  kind: 'mqtt' | 'recovered';
  body: Buffer;
  topic: string;
  qos: number;
  messageId: number | undefined;
  /**
   * The connection its PUBACK goes on: the one it came on, or a later one of the same
   * session that re-sent it (DUP), see `Acks`.
   */
  generation: number;
  /** Its PUBACK was given (sent, or owed to a resumed session), or it needs none. */
  acked: boolean;
  receivedAt: Date;
  /** For a recovered job. */
  jobId?: string;
  /** A recovered job's claim, taken before it was queued (one worker per job). */
  claim?: HeldClaim;
}

/**
 * mqtt.js sends the PUBACK when `handleMessage` calls back without an error, and moves
 * on to the next packet either way. Calling back with this error therefore defers the
 * PUBACK without stalling the connection (a held callback would stop keepalive).
 */
export const DEFER_ACK = new Error('PUBACK deferred until the job is claimed');

export function heldFromPacket(packet: IPublishPacket, generation: number): Held {
  const payload = packet.payload;
  return {
    kind: 'mqtt',
    body: typeof payload === 'string' ? Buffer.from(payload) : payload,
    topic: packet.topic,
    qos: packet.qos,
    messageId: packet.messageId,
    generation,
    acked: packet.qos === 0,
    receivedAt: new Date(),
  };
}

/** A job found on the drive, delivered as the request `{ id }`. */
export function heldRecovered(id: string, generation: number, claim: HeldClaim): Held {
  return {
    kind: 'recovered',
    body: Buffer.from(JSON.stringify({ id })),
    topic: 'recovery',
    qos: 0,
    messageId: undefined,
    generation,
    acked: true,
    receivedAt: new Date(),
    jobId: id,
    claim,
  };
}
