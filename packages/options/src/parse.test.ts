import { isJwError } from '@jw/core/errors';
import { describe, expect, it } from 'vitest';
import { parseBoolean, parseDuration, parseValue } from './parse.js';

describe('settings parsing', () => {
  it('parses durations with a default unit or their own', () => {
    expect(parseDuration('30')).toBe(30_000);
    expect(parseDuration('30', 'm')).toBe(1_800_000);
    expect(parseDuration('500ms', 'm')).toBe(500);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration(' 2M ')).toBe(120_000);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
    expect(() => parseDuration('-1')).toThrow(/not a duration/);
  });

  it('parses booleans the way env files write them', () => {
    for (const v of ['true', '1', 'YES', 'on']) expect(parseBoolean(v)).toBe(true);
    for (const v of ['false', '0', 'no', 'off', '']) expect(parseBoolean(v)).toBe(false);
    expect(() => parseBoolean('maybe')).toThrow(/not a boolean/);
  });

  it('names the flag or env var in errors, as BAD_CONFIG', () => {
    const error = (() => {
      try {
        parseValue(
          { flags: '--max-jobs <n>', description: '', type: 'int', min: 0 },
          '-1',
          'FILE_MAX_JOBS',
        );
      } catch (e) {
        return e;
      }
    })();
    expect(isJwError(error, 'BAD_CONFIG')).toBe(true);
    expect(String((error as Error).message)).toBe('FILE_MAX_JOBS: must be at least 0');
    expect(() =>
      parseValue({ flags: '--n <n>', description: '', type: 'int' }, '1.5', '--n'),
    ).toThrow(/whole number/);
    expect(() =>
      parseValue({ flags: '--f <f>', description: '', choices: ['json', 'pretty'] }, 'xml', '--f'),
    ).toThrow(/one of json, pretty/);
    expect(
      parseValue({ flags: '--l <l>', description: '', type: 'list' }, 'a, b,,c', '--l'),
    ).toEqual(['a', 'b', 'c']);
  });
});
