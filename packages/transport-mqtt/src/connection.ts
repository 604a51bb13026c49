import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { type IClientOptions, MqttClient } from 'mqtt';
import type { ResolvedOptions } from './options.js';

/**
 * Opens the broker socket ourselves so that Nagle is off (SPEC 7: every message is
 * small and a controller waits on it); mqtt.js's own builders leave it on.
 */
function streamBuilder(options: ResolvedOptions): () => Socket {
  const url = new URL(options.url);
  const secure = url.protocol !== 'mqtt:' && url.protocol !== 'tcp:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port) || (secure ? 8883 : 1883);
  return () => {
    if (!secure) return net.createConnection({ host, port, noDelay: true });
    const socket = tls.connect({
      host,
      port,
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
      rejectUnauthorized: options.rejectUnauthorized,
    });
    socket.setNoDelay(true);
    return socket;
  };
}

/** A client that is not connected yet: handlers must be in place before `connect()`. */
export function createClient(options: ResolvedOptions, clientOptions: IClientOptions): MqttClient {
  return new MqttClient(streamBuilder(options), { ...clientOptions, manualConnect: true });
}

/**
 * Reconnect back-off: mqtt.js waits `options.reconnectPeriod` before each attempt and
 * reads it every time, so doubling it after each failed attempt gives exponential
 * back-off (with jitter, so a fleet does not reconnect in step after a broker restart).
 */
export function installBackoff(client: MqttClient, minMs: number, maxMs: number): void {
  let next = minMs;
  const jitter = (ms: number) => Math.round(ms * (0.8 + Math.random() * 0.4));
  client.options.reconnectPeriod = jitter(minMs);
  client.on('connect', () => {
    next = minMs;
    client.options.reconnectPeriod = jitter(minMs);
  });
  client.on('close', () => {
    client.options.reconnectPeriod = jitter(next);
    next = Math.min(maxMs, next * 2);
  });
}
