import type { OptionSpec } from './options.js';

/** Dead-letter file and disk guard settings of every binary (SPEC 11). `P_` is the app's env prefix. */
export const GUARD_OPTIONS = {
  deadLetterFile: {
    flags: '--dead-letter-file <path>',
    env: 'P_DEAD_LETTER_FILE',
    description:
      'also write dead letters here as JSON lines (rotated to PATH.1 … PATH.N; off when unset)',
  },
  deadLetterMaxSize: {
    flags: '--dead-letter-max-size <size>',
    env: 'P_DEAD_LETTER_MAX_SIZE',
    default: '10MiB',
    description: 'rotate the dead-letter file before it grows past this (bytes, or 512KiB, 10MiB)',
  },
  deadLetterMaxFiles: {
    flags: '--dead-letter-max-files <n>',
    env: 'P_DEAD_LETTER_MAX_FILES',
    type: 'int',
    min: 0,
    default: 5,
    description: 'rotated dead-letter files kept',
  },
  deadLetterMaxTotal: {
    flags: '--dead-letter-max-total <size>',
    env: 'P_DEAD_LETTER_MAX_TOTAL',
    default: '100MiB',
    description: 'the dead-letter file and its rotated files together at most; the oldest go first',
  },
  deadLetterMaxAge: {
    flags: '--dead-letter-max-age <duration>',
    env: 'P_DEAD_LETTER_MAX_AGE',
    type: 'duration',
    unit: 'h',
    default: '0',
    description: 'remove rotated dead-letter files older than this (hours, or 30m; 0 = keep)',
  },
  minFreeSpace: {
    flags: '--min-free-space <size|percent>',
    env: 'P_MIN_FREE_SPACE',
    default: '500MiB',
    description:
      'free space the workspaces filesystem must keep; below it no work is taken (500MiB, 5%; 0 = off)',
  },
  diskCheckInterval: {
    flags: '--disk-check-interval <duration>',
    env: 'P_DISK_CHECK_INTERVAL',
    type: 'duration',
    unit: 's',
    default: '10',
    min: 10,
    description: 'how often the free space is checked while waiting for work or for room',
  },
} satisfies Record<string, OptionSpec>;
