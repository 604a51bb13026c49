import { ErrorCode, JwError } from '@jw/core';
import { describe, expect, it } from 'vitest';
import { deadLetterRecord } from './dead-letter.js';

const base = { workerId: 'w', topic: 'jobs/pending', receivedAt: new Date(0), maxPayloadBytes: 8 };

describe('deadLetterRecord', () => {
  it('carries the payload as text, the reason and the code', () => {
    const error = new JwError(ErrorCode.BAD_REQUEST, 'request is not JSON');
    expect(deadLetterRecord({ ...base, error, payload: Buffer.from('nope') })).toEqual({
      reason: 'request is not JSON',
      errorCode: 'BAD_REQUEST',
      workerId: 'w',
      topic: 'jobs/pending',
      receivedAt: '1970-01-01T00:00:00.000Z',
      payloadBytes: 4,
      payload: 'nope',
    });
  });

  it('cuts a large payload and uses base64 for bytes that are not UTF-8', () => {
    const error = new JwError(ErrorCode.BAD_REQUEST, 'too big', { jobId: 'j' });
    const big = deadLetterRecord({ ...base, error, payload: Buffer.from('0123456789') });
    expect(big).toMatchObject({
      jobId: 'j',
      payload: '01234567',
      payloadBytes: 10,
      truncated: true,
    });
    const binary = deadLetterRecord({ ...base, error, payload: Buffer.from([0xff, 0xfe, 0x00]) });
    expect(binary).toMatchObject({ payloadBase64: '//4A', payloadBytes: 3 });
    expect(binary.payload).toBeUndefined();
  });
});
