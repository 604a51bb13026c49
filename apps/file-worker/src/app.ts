import { runWorkerApp } from '@jw/cli/app';
import { fileQueueOptions, fileTransportOptions } from '@jw/transport-file/flags';
import pkg from '../package.json' with { type: 'json' };

runWorkerApp({
  name: 'file-worker',
  version: pkg.version,
  description: 'Run jw jobs dropped as request files into a watched queue folder.',
  transportName: 'file',
  envPrefix: 'FILE',
  options: fileQueueOptions,
  // Loaded only to run: --help and --version answer without the transport.
  createTransport: async ({ options, common }) => {
    const { createFileTransport } = await import('@jw/transport-file');
    return createFileTransport(fileTransportOptions(options, { orphanAfterMs: common.leaseMs }));
  },
});
