import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox } from '@jw/testing/fs';
import { describe, expect, it } from 'vitest';
import { isJwError } from './errors.js';
import { BadRequestError, isValidJobId, parseRequest, resolveJobDir } from './request.js';

describe('isValidJobId', () => {
  it.each(['job_2026_01', 'a', 'A.b-c_d', '9', 'x'.repeat(128)])('accepts %s', (id) => {
    expect(isValidJobId(id)).toBe(true);
  });
  it.each([
    '',
    '.',
    '..',
    '../x',
    '/abs',
    'a/b',
    'a\\b',
    '.hidden',
    '-dash',
    'x'.repeat(129),
    'sp ace',
    'ü',
    'a\0b',
  ])('refuses %j', (id) => {
    expect(isValidJobId(id)).toBe(false);
  });
  it('refuses non-strings', () => {
    expect(isValidJobId(12)).toBe(false);
    expect(isValidJobId(undefined)).toBe(false);
  });
});

describe('parseRequest', () => {
  it('parses bytes, text and objects, ignoring unknown fields', () => {
    expect(parseRequest(Buffer.from('{"id":"a","extra":1}'))).toEqual({ id: 'a' });
    expect(parseRequest('{"id":"a","steps":["echo"],"force":true}')).toEqual({
      id: 'a',
      steps: ['echo'],
      force: true,
    });
    expect(parseRequest({ id: 'a', env: { N: 1, B: true } })).toEqual({
      id: 'a',
      env: { N: '1', B: 'true' },
    });
  });

  const bad: [string, string | Record<string, unknown>, string | undefined][] = [
    ['not JSON', 'nope', undefined],
    ['empty', '', undefined],
    ['an array', '[1]', undefined],
    ['no id', '{"steps":["x"]}', undefined],
    ['a ../ id', '{"id":"../x"}', undefined],
    ['an absolute id', '{"id":"/etc"}', undefined],
    ['an empty id', '{"id":""}', undefined],
    ['bad steps, id known', '{"id":"ok","steps":[]}', 'ok'],
    ['a step without run', '{"id":"ok","steps":[{"name":"x"}]}', 'ok'],
    ['a negative time-out', { id: 'ok', timeoutSeconds: -1 }, 'ok'],
  ];
  it.each(bad)('refuses %s with BAD_REQUEST', (_name, body, id) => {
    try {
      parseRequest(body);
      expect.fail('should throw');
    } catch (error) {
      expect(error).toBeInstanceOf(BadRequestError);
      expect(isJwError(error, 'BAD_REQUEST')).toBe(true);
      expect((error as BadRequestError).jobId).toBe(id);
    }
  });

  it.each([
    [
      { id: 'a', steps: [42] },
      'steps.0: expected a command string or an object with "run" or "uses"',
    ],
    [{ id: 'a', steps: [{ run: 5 }] }, 'steps.0: run: expected string, received number'],
    [{ id: 'a', env: { X: {} } }, 'env.X: expected a string, number or boolean'],
    [{ id: 'a', timeoutSeconds: 'x' }, 'timeoutSeconds: expected number, received string'],
    [{ id: 5 }, 'id: expected string, received number'],
  ])('says which field is wrong and what was expected: %j', (body, message) => {
    const error = (() => {
      try {
        parseRequest(body);
      } catch (e) {
        return e as BadRequestError;
      }
    })();
    expect(error?.message).toBe(message);
  });

  it('refuses a request over the size limit but still knows its id', () => {
    const body = JSON.stringify({ id: 'big', pad: 'x'.repeat(2 * 1024 * 1024) });
    expect(() => parseRequest(body)).toThrow(/larger than/);
    try {
      parseRequest(body);
    } catch (error) {
      expect((error as BadRequestError).jobId).toBe('big');
    }
  });
});

describe('resolveJobDir', () => {
  it('finds a job dir, reports a missing one, refuses links out of the jobs dir', async () => {
    const box = await createSandbox();
    try {
      await box.makeJob('real', { steps: ['true'] });
      expect(await resolveJobDir(box.jobsDir, 'real')).toEqual({
        path: path.join(box.jobsDir, 'real'),
        exists: true,
      });
      expect((await resolveJobDir(box.jobsDir, 'missing')).exists).toBe(false);
      const outside = path.join(box.root, 'outside');
      await mkdir(outside);
      await symlink(outside, path.join(box.jobsDir, 'escape'));
      await expect(resolveJobDir(box.jobsDir, 'escape')).rejects.toThrow(/outside the jobs dir/);
      await symlink(path.join(box.jobsDir, 'real'), path.join(box.jobsDir, 'alias'));
      expect((await resolveJobDir(box.jobsDir, 'alias')).path).toBe(path.join(box.jobsDir, 'real'));
      await symlink(path.join(box.root, 'nothing'), path.join(box.jobsDir, 'dangling'));
      await expect(resolveJobDir(box.jobsDir, 'dangling')).rejects.toThrow(/dangling/);
    } finally {
      await box.cleanup();
    }
  });
});

describe('traceparent', () => {
  const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('keeps a valid trace context', () => {
    const request = parseRequest({ id: 'j', traceparent: good, tracestate: 'vendor=1' });
    expect(request.traceparent).toBe(good);
    expect(request.tracestate).toBe('vendor=1');
  });
  it.each([
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    42,
  ])('drops %j without refusing the request', (traceparent) => {
    const request = parseRequest({ id: 'j', traceparent });
    expect(request.id).toBe('j');
    expect(request.traceparent).toBeUndefined();
  });
});
