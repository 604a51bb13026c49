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

describe('JobQueue stale jobs', () => {
  let clock = 0;
  const now = () => clock;

  it('queues a job again when its agent went silent, and ends a silent stop', () => {
    const queue = new JobQueue({ staleAfterMs: 50, now });
    queue.submit({ job_id: 'a' });
    queue.submit({ job_id: 'b' });
    queue.take('w1');
    queue.take('w1');
    queue.report({ job_id: 'a', status: 'running', worker_id: 'w1' });
    queue.requestStop('b');
    clock += 49;
    expect(queue.take('w2')).toBeUndefined();
    clock += 1;
    expect(queue.take('w2')).toMatchObject({ job_id: 'a', status: 'dispatched', worker_id: 'w2' });
    expect(queue.get('b')).toMatchObject({ status: 'stopped', ended: true });
    expect(queue.get('a')?.history.map((h) => h.status)).toEqual([
      'queued',
      'dispatched',
      'running',
      'queued',
      'dispatched',
    ]);
  });

  it('keeps a job whose agent keeps posting', () => {
    const queue = new JobQueue({ staleAfterMs: 60, now });
    queue.submit({ job_id: 'a' });
    queue.take('w1');
    for (let i = 0; i < 4; i++) {
      clock += 40;
      queue.report({ job_id: 'a', status: 'running', worker_id: 'w1' });
      queue.take('w2');
    }
    expect(queue.get('a')).toMatchObject({ status: 'running', worker_id: 'w1' });
  });
});
