import { describe, expect, it } from 'vitest';
import { JobQueue, QueueError } from './job-queue.js';

describe('JobQueue', () => {
  it('hands each job to one agent, oldest first', () => {
    const queue = new JobQueue();
    queue.submit({ job_id: 'a', config_path: 'c' });
    queue.submit({ job_id: 'b', config_path: 'c' });
    expect(queue.take('w1')?.job_id).toBe('a');
    expect(queue.take('w2')?.job_id).toBe('b');
    expect(queue.take('w1')).toBeUndefined();
    expect(queue.get('a')).toMatchObject({ status: 'dispatched', worker_id: 'w1' });
  });

  it('keeps a stop request and an end against late running reports', () => {
    const queue = new JobQueue();
    queue.submit({ job_id: 'a' });
    queue.take('w1');
    queue.report({ job_id: 'a', status: 'running', worker_id: 'w1' });
    queue.requestStop('a');
    queue.report({ job_id: 'a', status: 'running', worker_id: 'w1' });
    expect(queue.get('a')?.status).toBe('stop_requested');
    queue.report({ job_id: 'a', status: 'stopped', worker_id: 'w1', exit_code: 143 });
    queue.report({ job_id: 'a', status: 'running', worker_id: 'w1' });
    expect(queue.get('a')).toMatchObject({ status: 'stopped', ended: true, exit_code: 143 });
  });

  it('cancels a queued job at once and refuses to end an ended one', () => {
    const queue = new JobQueue();
    queue.submit({ job_id: 'a' });
    expect(queue.cancel('a')).toMatchObject({ status: 'canceled', ended: true });
    expect(queue.take('w1')).toBeUndefined();
    expect(() => queue.requestStop('a')).toThrow(QueueError);
  });

  it('refuses bad reports', () => {
    const queue = new JobQueue();
    expect(() => queue.report({ job_id: 'x', status: 'finished', worker_id: 'w' })).toThrow(
      /unknown job/,
    );
    queue.submit({ job_id: 'x' });
    expect(() => queue.report({ job_id: 'x', status: 'done', worker_id: 'w' })).toThrow(QueueError);
  });
});
