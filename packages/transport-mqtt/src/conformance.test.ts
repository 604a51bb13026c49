import { describeTransportConformance } from '@jw/conformance';
import type { ResultMessage } from '@jw/core';
import { createSandbox } from '@jw/testing/fs';
import { type Mosquitto, mosquittoPub, startMosquitto, watchTopics } from '@jw/testing/mosquitto';
import { afterAll, beforeAll } from 'vitest';
import { createMqttTransport } from './mqtt-transport.js';

let broker: Mosquitto;
let n = 0;
beforeAll(async () => {
  broker = await startMosquitto();
});
afterAll(async () => {
  await broker?.close();
});

describeTransportConformance('mqtt', async () => {
  const sandbox = await createSandbox('jw-mqtt-contract-');
  // Topics of their own per test, so no test sees another's messages.
  const p = `contract${++n}`;
  const watch = await watchTopics(broker.url, [`${p}/#`]);
  return {
    sandbox,
    createTransport: (workerId) =>
      createMqttTransport({
        url: broker.url,
        clientId: `${p}-${workerId}`,
        topic: `$share/workers/${p}/pending`,
        clean: true,
        topics: {
          results: `${p}/results`,
          progress: `${p}/progress`,
          cancel: `${p}/cancel`,
          workers: `${p}/workers`,
          deadLetter: `${p}/dead`,
        },
        recoverIntervalMs: 500,
      }),
    send: (body) => mosquittoPub(broker.url, `${p}/pending`, body),
    async result(id) {
      const message = await watch.waitFor((m) => m.topic === `${p}/results/${id}`);
      return JSON.parse(message.payload) as ResultMessage;
    },
    async deadLetter(raw) {
      await watch.waitFor((m) => m.topic === `${p}/dead` && JSON.parse(m.payload).payload === raw);
    },
    async close() {
      await watch.close();
      await sandbox.cleanup();
    },
  };
});
