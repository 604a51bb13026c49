import { runWorkerApp } from '@jw/cli';
import { createFileTransport } from '@jw/transport-file';
import pkg from '../package.json' with { type: 'json' };

runWorkerApp({
  name: 'file-worker',
  version: pkg.version,
  description: 'Run jw jobs dropped as request files into a watched queue folder.',
  transportName: 'file',
  envPrefix: 'FILE',
  options: {
    queueDir: {
      flags: '-q, --queue-dir <dir>',
      env: 'FILE_QUEUE_DIR',
      default: './queue',
      description: 'queue root: pending/, processing/, done/, failed/, results/, cancel/',
    },
    poll: {
      flags: '--poll',
      env: 'FILE_POLL',
      type: 'boolean',
      default: false,
      description: 'poll the folders (needed on NFS) instead of inotify',
    },
    pollInterval: {
      flags: '--poll-interval <duration>',
      env: 'FILE_POLL_INTERVAL',
      type: 'duration',
      unit: 'ms',
      default: '1000',
      min: 10,
      description: 'polling and rescan interval (ms, or 2s)',
    },
  },
  createTransport: ({ options, common }) =>
    createFileTransport({
      queueDir: options.queueDir as string,
      usePolling: options.poll as boolean,
      intervalMs: options.pollInterval as number,
      orphanAfterMs: common.leaseMs,
    }),
});
