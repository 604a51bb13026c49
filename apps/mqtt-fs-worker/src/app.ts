import { runWorkerApp } from '@jw/cli/app';
import { mqttOptions, mqttTransportOptions } from '@jw/transport-mqtt/flags';
import pkg from '../package.json' with { type: 'json' };

runWorkerApp({
  name: 'mqtt-fs-worker',
  version: pkg.version,
  description: 'Run jw jobs signalled over MQTT (drop-in for the MQTT job worker).',
  transportName: 'mqtt',
  envPrefix: 'MQTT',
  // One-shot as before: one job, then exit (a supervisor restarts it for a fresh environment).
  defaults: { maxJobs: 1 },
  options: mqttOptions,
  // Loaded only to run: --help and --version answer without the MQTT client.
  createTransport: async ({ options, common }) => {
    const { createMqttTransport } = await import('@jw/transport-mqtt');
    return createMqttTransport(await mqttTransportOptions(options, { clientId: common.id }));
  },
});
