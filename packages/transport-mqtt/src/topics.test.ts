import { describe, expect, it } from 'vitest';
import {
  idUnder,
  isSafeTopicLevel,
  isValidFilter,
  isValidTopicName,
  matchingFilter,
  topicMatches,
} from './topics.js';

describe('topics', () => {
  it('matches like the broker does, shared filters by their inner filter', () => {
    expect(topicMatches('jobs/pending', 'jobs/pending')).toBe(true);
    expect(topicMatches('$share/g/jobs/pending', 'jobs/pending')).toBe(true);
    expect(topicMatches('$share/g/jobs/+/pending', 'jobs/eu/pending')).toBe(true);
    expect(topicMatches('jobs/#', 'jobs')).toBe(true);
    expect(topicMatches('jobs/#', 'jobs/a/b')).toBe(true);
    expect(topicMatches('jobs/+', 'jobs/a/b')).toBe(false);
    expect(topicMatches('jobs/pending', 'jobs/pending/x')).toBe(false);
    expect(topicMatches('#', '$SYS/broker/uptime')).toBe(false);
    expect(matchingFilter('$share/group/jobs/#')).toBe('jobs/#');
  });

  it('validates filters, names and id levels', () => {
    expect(isValidFilter('$share/worker-group/jobs/pending')).toBe(true);
    expect(isValidFilter('jobs/#/pending')).toBe(false);
    expect(isValidFilter('jobs/pen+ding')).toBe(false);
    expect(isValidFilter('$share//jobs')).toBe(false);
    expect(isValidFilter('')).toBe(false);
    expect(isValidTopicName('jobs/dead')).toBe(true);
    expect(isValidTopicName('jobs/+')).toBe(false);
    expect(isValidTopicName('$SYS/x')).toBe(false);
    expect(isSafeTopicLevel('worker-01')).toBe(true);
    expect(isSafeTopicLevel('a/b')).toBe(false);
    expect(isSafeTopicLevel('#')).toBe(false);
    expect(idUnder('jobs/cancel', 'jobs/cancel/job_1')).toBe('job_1');
    expect(idUnder('jobs/cancel', 'jobs/cancel/a/b')).toBeUndefined();
  });
});
