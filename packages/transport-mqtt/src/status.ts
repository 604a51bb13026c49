import { type TransportContext, workerHeartbeat } from '@jw/core';

/**
 * The retained `workers/{id}/status` message: the heartbeat of `@jw/core`, refreshed on
 * the heartbeat timer; the last will is the `offline` one, made at connect.
 */
export function statusMessage(
  context: TransportContext,
  status: 'online' | 'offline',
  startedAt: Date,
): string {
  return JSON.stringify(
    workerHeartbeat({ context, transport: 'mqtt', startedAt, offline: status === 'offline' }),
  );
}
