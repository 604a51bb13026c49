import { describe, expect, it } from 'vitest';
import { isJsonPrefix } from './json-prefix.js';

describe('isJsonPrefix', () => {
  it.each([
    '',
    '  ',
    '{',
    '{"id"',
    '{"id":',
    '{"id":"sl',
    '{"id":"slow",',
    '{"id":"a\\"b',
    '{"steps":["echo a",',
    '{"steps":[',
    '{"n":12',
    '{"ok":tr',
    '{"a":[],"b":{}',
    '[1,[2,{"x":null',
  ])('waits for %j', (text) => {
    expect(isJsonPrefix(text)).toBe(true);
  });

  it.each([
    '{{{',
    '}{',
    'not json at all',
    '{"id":"a"}}',
    '{"id" "a"',
    '{"id":"a",}',
    '[1,]',
    '{"ok":tru}',
    '{"a":1]',
    '{"id":"a"} x',
  ])('gives up on %j', (text) => {
    expect(isJsonPrefix(text)).toBe(false);
  });
});
