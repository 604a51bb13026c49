import { describe, expect, it } from 'vitest';
import { type FileState, Snapshot } from './snapshot.js';

const file = (size: number, mode = 0o644): FileState => ({
  kind: 'file',
  size,
  mtimeMs: 1764646400123.456 + size,
  mode,
});

describe('Snapshot', () => {
  it('keeps each file and link as set, by path or by directory and name', () => {
    const s = new Snapshot();
    s.set('top.txt', file(1));
    s.setIn('a/b', 'deep.bin', file(5 * 2 ** 40, 0o4755));
    s.set('a/link', { kind: 'symlink', size: 3, mtimeMs: 7, mode: 0o777, target: '../x' });
    expect(s.size).toBe(3);
    expect(s.get('top.txt')).toEqual(file(1));
    // Sizes past 2^32 and setuid bits survive the compact columns.
    expect(s.get('a/b/deep.bin')).toEqual(file(5 * 2 ** 40, 0o4755));
    expect(s.getIn('a', 'link')).toEqual({
      kind: 'symlink',
      size: 3,
      mtimeMs: 7,
      mode: 0o777,
      target: '../x',
    });
    expect(s.get('a/b')).toBeUndefined();
    expect(s.has('deep.bin')).toBe(false);
  });

  it('replaces a path set twice and lists every path once, past its first growth', () => {
    const s = new Snapshot();
    const want = new Map<string, FileState>();
    for (let i = 0; i < 1000; i++) {
      const rel = `d${i % 7}/f${i}`;
      s.set(rel, file(i));
      want.set(rel, file(i));
    }
    s.set('d3/f3', { kind: 'symlink', size: 1, mtimeMs: 2, mode: 0o777, target: 't' });
    want.set('d3/f3', { kind: 'symlink', size: 1, mtimeMs: 2, mode: 0o777, target: 't' });
    s.set('d3/f3', file(9));
    want.set('d3/f3', file(9));
    expect(s.size).toBe(1000);
    expect(new Map(s)).toEqual(want);
  });
});
