import { afterEach, describe, expect, it, vi } from 'vitest';
import { versionOnly } from './version-only.js';

describe('versionOnly', () => {
  afterEach(() => vi.restoreAllMocks());

  it('answers --version and -V alone, as the parser would', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    expect(versionOnly('1.2.3', ['--version'])).toBe(true);
    expect(versionOnly('1.2.3', ['-V'])).toBe(true);
    expect(write.mock.calls).toEqual([['1.2.3\n'], ['1.2.3\n']]);
  });

  it('leaves every other command line to the parser', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    for (const argv of [[], ['--help'], ['-V', '--log-level', 'info'], ['--versions'], ['-v']])
      expect(versionOnly('1.2.3', argv)).toBe(false);
    expect(write).not.toHaveBeenCalled();
  });
});
