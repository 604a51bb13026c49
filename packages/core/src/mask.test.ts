import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { maskText, SecretMasker, secretValues } from './mask.js';

async function through(secrets: string[], chunks: string[]): Promise<string> {
  const masker = new SecretMasker(secrets);
  const out = buffer(masker);
  Readable.from(chunks.map((c) => Buffer.from(c))).pipe(masker);
  return (await out).toString();
}

describe('secret masking', () => {
  it('masks a value inside one write', async () => {
    expect(await through(['hunter22'], ['token=hunter22 ok\n'])).toBe('token=*** ok\n');
  });

  it('masks a value split across writes, at every split point', async () => {
    const text = 'a hunter22 b hunter22';
    for (let cut = 0; cut <= text.length; cut++) {
      expect(await through(['hunter22'], [text.slice(0, cut), text.slice(cut)])).toBe(
        'a *** b ***',
      );
    }
    expect(await through(['hunter22'], [...'xx hunter22 yy'])).toBe('xx *** yy');
  });

  it('passes other output on at once, holding back only a possible start of a secret', async () => {
    const masker = new SecretMasker(['hunter22']);
    const seen: string[] = [];
    masker.on('data', (d: Buffer) => seen.push(d.toString()));
    masker.write('plain line\n');
    masker.write('then hun');
    await new Promise((r) => setImmediate(r));
    expect(seen.join('')).toBe('plain line\nthen ');
    masker.end('gry');
    await new Promise((r) => masker.on('end', r));
    expect(seen.join('')).toBe('plain line\nthen hungry');
  });

  it('prefers the longest of overlapping secrets and ignores values too short to mask', async () => {
    expect(secretValues(['ab', 'abc', 'abcdef', undefined, 'abc'])).toEqual(['abcdef', 'abc']);
    expect(await through(['abc', 'abcdef', 'x'], ['1 abcdef 2 abc 3 x'])).toBe('1 *** 2 *** 3 x');
  });

  it('masks plain strings', () => {
    expect(maskText('curl -H "Authorization: s3cr3t" s3cr3t', ['s3cr3t'])).toBe(
      'curl -H "Authorization: ***" ***',
    );
  });
});
