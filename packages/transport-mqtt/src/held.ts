import type { IPublishPacket } from 'mqtt';

/** A request waiting for the worker: a broker message (not yet acknowledged) or a recovered job. */
export interface Held {
  kind: 'mqtt' | 'recovered';
  body: Buffer;
  topic: string;
  qos: number;
  messageId: number | undefined;
  /** The connection it came on: a PUBACK is only meaningful on that one. */
  generation: number;
  acked: boolean;
  receivedAt: Date;
  /** For a recovered job. */
  jobId?: string;
}

/**
 * mqtt.js sends the PUBACK when `handleMessage` calls back without an error, and moves
 * on to the next packet either way. Calling back with this error therefore defers the
 * PUBACK without stalling the connection (a held callback would stop keepalive).
 */
export const DEFER_ACK = new Error('PUBACK deferred until the worker takes the request');

export function heldFromPacket(packet: IPublishPacket, generation: number): Held {
  const payload = packet.payload;
  return {
    kind: 'mqtt',
    body: typeof payload === 'string' ? Buffer.from(payload) : payload,
    topic: packet.topic,
    qos: packet.qos,
    messageId: packet.messageId,
    generation,
    acked: false,
    receivedAt: new Date(),
  };
}

/** A job found on the drive, delivered as the request `{ id }`. */
export function heldRecovered(id: string, generation: number): Held {
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
  };
}
