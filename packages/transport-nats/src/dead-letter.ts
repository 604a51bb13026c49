import type { JwError } from '@jw/core';
import type { JsMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs } from '@nats-io/transport-node';

/** Header values are one line; long reasons (a list of schema issues) are cut. */
function headerValue(value: string, max = 1000): string {
  const line = value.replace(/[\r\n]+/g, ' ');
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** Size of the headers on the wire: `NATS/1.0\r\n`, one `key: value\r\n` each, a blank line. */
function headerBytes(h: MsgHdrs): number {
  let size = 12;
  for (const key of h.keys()) {
    for (const value of h.values(key)) size += Buffer.byteLength(`${key}: ${value}\r\n`);
  }
  return size;
}

export interface DeadLetter {
  headers: MsgHdrs;
  data: Uint8Array;
}

/**
 * A dead letter carries the raw request as its body, untouched, and says why in
 * headers, so even a payload that is not JSON (or not text) is kept as received.
 * A body that would not fit the server's max payload next to the headers is cut
 * and marked `Jw-Truncated`.
 */
export function deadLetterOf(
  msg: JsMsg,
  error: JwError,
  context: { workerId: string; stream: string; maxPayload: number | undefined },
): DeadLetter {
  const h = headers();
  h.set('Jw-Error-Code', error.code);
  h.set('Jw-Error', headerValue(error.message));
  h.set('Jw-Worker-Id', context.workerId);
  h.set('Jw-Source-Stream', context.stream);
  h.set('Jw-Source-Subject', msg.subject);
  h.set('Jw-Source-Sequence', String(msg.seq));
  h.set('Jw-Delivery-Count', String(msg.info.deliveryCount));
  h.set('Jw-Rejected-At', new Date().toISOString());
  if (error.jobId !== undefined) h.set('Jw-Job-Id', error.jobId);
  let data = msg.data;
  if (context.maxPayload !== undefined) {
    h.set('Jw-Payload-Size', String(data.byteLength));
    // Room for the headers plus the truncation mark itself.
    const room = context.maxPayload - headerBytes(h) - 64;
    if (data.byteLength > room) {
      data = data.subarray(0, Math.max(0, room));
      h.set('Jw-Truncated', 'true');
    }
  }
  return { headers: h, data };
}
