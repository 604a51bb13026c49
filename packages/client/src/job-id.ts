import { randomBytes } from 'node:crypto';
import { isValidJobId } from '@jw/core';
import { ClientError } from './errors.js';

/** `job-20260101-120000-a1b2c3`: sorts by submit time (UTC), unique enough to never collide. */
export function generateJobId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-');
  return `job-${stamp}-${randomBytes(3).toString('hex')}`;
}

export function checkJobId(id: string): string {
  if (!isValidJobId(id)) {
    throw new ClientError(
      `job id ${JSON.stringify(id)} is not valid`,
      'an id is 1-128 of A-Z a-z 0-9 . _ -, not starting with . or -',
    );
  }
  return id;
}
