import { defineOptions, type InferOptions, option } from '@jw/options';
import type { FileTransportOptions } from './file-transport.js';

/**
 * The flags of a file-queue worker. `P_` in an env name is the app's prefix (`FILE`
 * gives `FILE_QUEUE_DIR`). Light: importing it loads no watcher.
 */
export const fileQueueOptions = defineOptions({
  queueDir: option.string({
    flags: '-q, --queue-dir <dir>',
    env: 'P_QUEUE_DIR',
    default: './queue',
    description:
      'queue root: pending/, processing/, done/, failed/, results/, cancel/, progress/, workers/',
  }),
  poll: option.flag({
    flags: '--poll',
    env: 'P_POLL',
    description: 'poll the folders (needed on NFS) instead of inotify',
  }),
  pollInterval: option.duration({
    flags: '--poll-interval <duration>',
    env: 'P_POLL_INTERVAL',
    unit: 'ms',
    default: '1000',
    min: 10,
    description: 'polling and rescan interval (ms, or 2s)',
  }),
  heartbeatInterval: option.duration({
    flags: '--heartbeat-interval <duration>',
    env: 'P_HEARTBEAT_INTERVAL',
    unit: 's',
    default: '30',
    description: 'how often workers/{id}.json is rewritten (seconds, or 500ms; 0 = no file)',
  }),
});

export type FileQueueOptionValues = InferOptions<typeof fileQueueOptions>;

/** The transport settings of parsed `fileQueueOptions`; orphans wait as long as a lease. */
export function fileTransportOptions(
  o: FileQueueOptionValues,
  extra: Pick<FileTransportOptions, 'orphanAfterMs'> = {},
): FileTransportOptions {
  return {
    queueDir: o.queueDir,
    usePolling: o.poll,
    intervalMs: o.pollInterval,
    heartbeatIntervalMs: o.heartbeatInterval,
    ...extra,
  };
}
