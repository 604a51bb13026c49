import path from 'node:path';
import type { Channel } from './channel.js';
import { ClientError } from './errors.js';

const VIA_HINT = 'use file:QUEUE_DIR, mqtt://host:1883, nats://host:4222 or http://backend:port';

/**
 * Opens the channel a `via` URL names: `file:QUEUE_DIR` (relative paths are taken from
 * the current directory), `mqtt://` / `mqtts://`, `nats://` / `tls://`, `http://` / `https://`.
 */
export async function openChannel(via: string): Promise<Channel> {
  const colon = via.indexOf(':');
  const scheme = colon > 0 ? via.slice(0, colon).toLowerCase() : '';
  if (scheme === 'file') {
    const rest = via.slice(colon + 1);
    const dir = rest.startsWith('//') ? new URL(via).pathname : rest;
    if (dir === '') throw new ClientError('file: needs a queue folder', VIA_HINT);
    return (await import('./channels/file.js')).fileChannel(path.resolve(dir));
  }
  let url: URL;
  try {
    url = new URL(via);
  } catch {
    throw new ClientError(`--via ${JSON.stringify(via)} is not a URL`, VIA_HINT);
  }
  switch (scheme) {
    case 'mqtt':
    case 'mqtts':
      // Loaded when used: each broker client costs start-up time.
      return (await import('./channels/mqtt.js')).mqttChannel(url);
    case 'nats':
    case 'tls':
      return (await import('./channels/nats.js')).natsChannel(url);
    case 'http':
    case 'https':
      return (await import('./channels/http.js')).httpChannel(url);
    default:
      throw new ClientError(`--via ${JSON.stringify(via)}: unknown scheme ${scheme}:`, VIA_HINT);
  }
}
