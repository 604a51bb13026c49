import type { ResultMessage } from '@jw/core';
import { createClient } from 'redis';

export type Client = ReturnType<typeof createClient>;

/** What a controller does on Redis: XADD requests, read result streams. */
export interface Controller {
  client: Client;
  /** Adds a request; resolves with its entry id. */
  send(body: string): Promise<string>;
  /** The newest result message of `id`, if any. */
  lastResult(id: string): Promise<ResultMessage | undefined>;
  /** Raw bodies on the dead-letter stream. */
  deadLetters(): Promise<string[]>;
  /** Entries delivered to a worker and not yet acknowledged, with their consumer. */
  pending(): Promise<{ id: string; consumer: string }[]>;
  close(): Promise<void>;
}

export async function connectController(socketPath: string, prefix: string): Promise<Controller> {
  const client = createClient({ socket: { path: socketPath, tls: false } });
  client.on('error', () => {});
  await client.connect();
  return {
    client,
    async send(body: string): Promise<string> {
      return client.xAdd(`${prefix}:pending`, '*', { body });
    },
    async lastResult(id: string): Promise<ResultMessage | undefined> {
      const [entry] = await client.xRevRange(`${prefix}:results:${id}`, '+', '-', { COUNT: 1 });
      return entry ? (JSON.parse(entry.message.body!) as ResultMessage) : undefined;
    },
    async deadLetters(): Promise<string[]> {
      const entries = await client.xRange(`${prefix}:dead`, '-', '+');
      return entries.map((e) => e.message.body ?? '');
    },
    async pending() {
      const entries = await client.xPendingRange(`${prefix}:pending`, 'jw', '-', '+', 100);
      return entries.map((e) => ({ id: e.id, consumer: e.consumer }));
    },
    async close() {
      await client.close();
    },
  };
}
