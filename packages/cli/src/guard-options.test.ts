import { describe, expect, it } from 'vitest';
import { guardSettings } from './guard-settings.js';

describe('guard settings', () => {
  it('turns sizes and percentages into worker options', () => {
    expect(
      guardSettings({
        minFreeSpace: '5%',
        diskCheckInterval: 2000,
        deadLetterFile: '/var/log/jw/dead.jsonl',
        deadLetterMaxSize: '1MiB',
        deadLetterMaxFiles: 3,
        deadLetterMaxTotal: '4MiB',
        deadLetterMaxAge: 3_600_000,
      }),
    ).toEqual({
      minFreeSpace: { percent: 5 },
      diskCheckMs: 2000,
      deadLetterFile: {
        path: '/var/log/jw/dead.jsonl',
        maxBytes: 1024 * 1024,
        maxFiles: 3,
        maxTotalBytes: 4 * 1024 * 1024,
        maxAgeMs: 3_600_000,
      },
    });
  });

  it('leaves the guard off at 0 and the file off when no path is given', () => {
    expect(guardSettings({ minFreeSpace: '0', deadLetterMaxSize: '1MiB' })).toEqual({});
    expect(guardSettings({ minFreeSpace: '0%' })).toEqual({});
  });

  it('names the setting a bad value came from', () => {
    expect(() => guardSettings({ minFreeSpace: 'plenty' })).toThrow(/--min-free-space: /);
    expect(() => guardSettings({ deadLetterFile: 'f', deadLetterMaxSize: '0' })).toThrow(
      /--dead-letter-max-size: must be at least 1 byte/,
    );
    expect(() => guardSettings({ deadLetterFile: 'f', deadLetterMaxTotal: 'x' })).toThrow(
      /--dead-letter-max-total: /,
    );
  });
});
