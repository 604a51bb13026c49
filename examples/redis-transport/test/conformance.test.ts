import { createSandbox, describeTransportConformance, waitFor } from '@jw/conformance';
import { afterAll, beforeAll } from 'vitest';
import { createRedisTransport } from '../src/index.js';
import { connectController } from './controller.js';
import { type RedisServer, startRedisServer } from './redis-server.js';

let server: RedisServer;
let n = 0;
beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

describeTransportConformance('redis', async () => {
  const sandbox = await createSandbox('jw-redis-contract-');
  // Keys of their own per test.
  const prefix = `contract${++n}`;
  const controller = await connectController(server.socketPath, prefix);
  return {
    sandbox,
    createTransport: () =>
      createRedisTransport({
        socketPath: server.socketPath,
        prefix,
        claimIdleMs: 5_000,
        blockMs: 500,
      }),
    async send(body) {
      await controller.send(body);
    },
    result: (id) => waitFor(() => controller.lastResult(id)),
    async deadLetter(raw) {
      await waitFor(async () => (await controller.deadLetters()).includes(raw));
    },
    async close() {
      await controller.close();
      await sandbox.cleanup();
    },
  };
});
