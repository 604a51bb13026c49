import { describeTransportConformance } from '@jw/conformance';
import type { ResultMessage } from '@jw/core';
import { createSandbox, waitFor } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { createNatsTransport } from './index.js';

let server: NatsServer;
let client: NatsConnection;
let n = 0;
beforeAll(async () => {
  server = await startNatsServer();
  client = await connect({ servers: server.url });
});
afterAll(async () => {
  await client?.close();
  await server?.close();
});

describeTransportConformance('nats', async () => {
  const sandbox = await createSandbox('jw-nats-contract-');
  // A stream and subjects of their own per test.
  const p = `contract${++n}`;
  const results = new Map<string, ResultMessage>();
  const dead: string[] = [];
  const subs = [
    client.subscribe(`${p}.results.>`, {
      callback: (_e, m) => {
        const r = m.json<ResultMessage>();
        results.set(r.id, r);
      },
    }),
    client.subscribe(`${p}.dead`, {
      callback: (_e, m) => {
        dead.push(m.string());
      },
    }),
  ];
  await client.flush();
  const js = jetstream(client);
  return {
    sandbox,
    createTransport: () =>
      createNatsTransport({
        url: server.url,
        stream: p.toUpperCase(),
        inputSubject: `${p}.pending`,
        outputSubject: `${p}.results`,
        deadLetterSubject: `${p}.dead`,
        progressSubject: `${p}.progress`,
        cancelSubject: `${p}.cancel`,
        statusSubjectPrefix: `${p}.workers`,
        // Competing workers share one durable consumer, as instances with the same --id do.
        durable: 'pool',
        ackWaitMs: 5000,
        pullExpiresMs: 1000,
      }),
    async send(body) {
      await js.publish(`${p}.pending`, body);
    },
    result: (id) => waitFor(() => results.get(id)),
    async deadLetter(raw) {
      await waitFor(() => dead.includes(raw));
    },
    async close() {
      for (const s of subs) s.unsubscribe();
      await sandbox.cleanup();
    },
  };
});
