import {
  DiskGuard,
  type FreeSpaceLimit,
  parseByteSize,
  parseFreeSpaceLimit,
  type WorkerOptions,
} from '@jw/core';
import { GUARD_OPTIONS } from './guard-options.js';
import { badSetting, longFlag } from './options.js';

type GuardKey = keyof typeof GUARD_OPTIONS;

/** The worker options the guard settings give; sizes are parsed here so a bad one is a bad setting. */
export type GuardSettings = Pick<WorkerOptions, 'deadLetterFile' | 'minFreeSpace' | 'diskCheckMs'>;

function parsed<T>(key: GuardKey, raw: unknown, parse: (text: string) => T): T {
  try {
    return parse(String(raw));
  } catch (error) {
    throw badSetting(`${longFlag(GUARD_OPTIONS[key])}: ${(error as Error).message}`);
  }
}

function positiveSize(text: string): number {
  const bytes = parseByteSize(text);
  if (bytes < 1) throw badSetting('must be at least 1 byte');
  return bytes;
}

export function guardSettings(values: Record<string, unknown>): GuardSettings {
  const v = values as Partial<Record<GuardKey, unknown>>;
  const min: FreeSpaceLimit = parsed('minFreeSpace', v.minFreeSpace ?? '0', parseFreeSpaceLimit);
  return {
    ...(DiskGuard.enabled(min) ? { minFreeSpace: min } : {}),
    ...(v.diskCheckInterval === undefined ? {} : { diskCheckMs: v.diskCheckInterval as number }),
    ...(typeof v.deadLetterFile === 'string' && v.deadLetterFile !== ''
      ? {
          deadLetterFile: {
            path: v.deadLetterFile,
            maxBytes: parsed('deadLetterMaxSize', v.deadLetterMaxSize ?? '10MiB', positiveSize),
            maxFiles: (v.deadLetterMaxFiles as number | undefined) ?? 5,
            maxTotalBytes: parsed(
              'deadLetterMaxTotal',
              v.deadLetterMaxTotal ?? '100MiB',
              parseByteSize,
            ),
            maxAgeMs: (v.deadLetterMaxAge as number | undefined) ?? 0,
          },
        }
      : {}),
  };
}
