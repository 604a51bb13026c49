import { describe, expect, it } from 'vitest';
import { NATS_DEFAULTS } from './options.js';
import { subjectMatches, subjectsOf } from './subjects.js';

describe('subjectMatches', () => {
  it.each([
    ['jobs.pending', 'jobs.pending', true],
    ['jobs.*', 'jobs.pending', true],
    ['jobs.>', 'jobs.results.a', true],
    ['jobs.>', 'jobs', false],
    ['jobs.*', 'jobs.results.a', false],
    ['jobs.pending', 'jobs.dead', false],
    ['*.pending', 'jobs.pending', true],
  ])('%s matches %s: %s', (filter, subject, expected) => {
    expect(subjectMatches(filter, subject)).toBe(expected);
  });
});

describe('subjectsOf', () => {
  it('builds the SPEC 7 subjects, and the flat result subject on request', () => {
    const s = subjectsOf(NATS_DEFAULTS);
    expect(s.result('j1')).toBe('jobs.results.j1');
    expect(s.progress('j1')).toBe('jobs.progress.j1');
    expect(s.status('w1')).toBe('workers.w1.status');
    expect(s.cancelFilter).toBe('jobs.cancel.*');
    expect(s.cancelledJob('jobs.cancel.j1')).toBe('j1');
    expect(s.cancelledJob('other.j1')).toBeUndefined();
    expect(s.results).toBe('jobs.results.>');
    const flat = subjectsOf({ ...NATS_DEFAULTS, flatResults: true });
    expect(flat.result('j1')).toBe('jobs.results');
    expect(flat.results).toBe('jobs.results');
  });
});
