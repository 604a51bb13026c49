import { describe, expect, it } from 'vitest';
import { parseProtocolVersion, resolveOptions } from './options.js';

describe('options', () => {
  it('reads protocol versions as people write them', () => {
    expect(parseProtocolVersion(undefined)).toBeUndefined();
    expect(parseProtocolVersion('5')).toBe(5);
    expect(parseProtocolVersion('mqttv5')).toBe(5);
    expect(parseProtocolVersion('3.1.1')).toBe(4);
    expect(parseProtocolVersion('mqttv311')).toBe(4);
    expect(() => parseProtocolVersion('3')).toThrow(
      expect.objectContaining({ code: 'BAD_CONFIG' }),
    );
  });

  it('fills defaults and refuses bad settings as BAD_CONFIG', () => {
    const o = resolveOptions({ url: 'mqtt://broker:1883' });
    expect(o).toMatchObject({
      topic: 'jobs/pending',
      clean: false,
      protocolVersion: 5,
      recover: true,
    });
    expect(o.topics).toEqual({
      results: 'jobs/results',
      progress: 'jobs/progress',
      cancel: 'jobs/cancel',
      workers: 'workers',
      deadLetter: 'jobs/dead',
    });
    const bad = expect.objectContaining({ code: 'BAD_CONFIG' });
    expect(() => resolveOptions({ url: 'not a url' })).toThrow(bad);
    expect(() => resolveOptions({ url: 'http://broker' })).toThrow(bad);
    expect(() => resolveOptions({ url: 'mqtt://b', topic: 'jobs/#/x' })).toThrow(bad);
    expect(() => resolveOptions({ url: 'mqtt://b', topics: { deadLetter: 'jobs/+' } })).toThrow(
      bad,
    );
    expect(() => resolveOptions({ url: 'mqtt://b', keepaliveSeconds: -1 })).toThrow(bad);
    expect(() => resolveOptions({ url: 'mqtt://b', protocolVersion: 3 as 4 })).toThrow(bad);
  });
});
