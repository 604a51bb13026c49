import { isValidJobId } from '@jw/core';
import { describe, expect, it } from 'vitest';
import { checkJobId, generateJobId } from './job-id.js';

describe('job ids', () => {
  it('generated ids are valid, sortable by time and distinct', () => {
    const id = generateJobId(new Date('2026-01-02T03:04:05.678Z'));
    expect(id).toMatch(/^job-20260102-030405-[0-9a-f]{6}$/);
    expect(isValidJobId(id)).toBe(true);
    const many = new Set(Array.from({ length: 200 }, () => generateJobId()));
    expect(many.size).toBe(200);
  });

  it('a given id that breaks SPEC 2 is refused with a hint', () => {
    expect(() => checkJobId('../escape')).toThrow(/not valid/);
    expect(() => checkJobId('-x')).toThrow(/not valid/);
    expect(checkJobId('ok_1.2-3')).toBe('ok_1.2-3');
  });
});
