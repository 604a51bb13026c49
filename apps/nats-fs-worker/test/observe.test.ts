import { createSandbox, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collect, queue, ready, startWorker, submit } from './helpers.js';

let server: NatsServer;
let nc: NatsConnection;
let box: Sandbox;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.close();
});
beforeEach(async () => {
  box = await createSandbox('jw-nats-observe-');
});
afterEach(async () => {
  await box.cleanup();
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface Event {
  state: string;
  progress?: { percent?: number; message?: string; step: { index: number; name: string } };
}

describe('nats-fs-worker: progress and metrics', () => {
  it('publishes a step’s $JW_PROGRESS reports on jobs.progress.{id}; /metrics shows the job and the connection', async () => {
    const q = queue('observe');
    const g = gate(box.root);
    await box.makeJob('prog', {
      steps: [
        {
          name: 'compile',
          run: `echo "50 halfway" >> "$JW_PROGRESS"; ${g.wait}; echo '{"percent":90,"message":"nearly"}' >> "$JW_PROGRESS"`,
        },
      ],
    });
    const progress = await collect(nc, `${q.progress}.prog`);
    const results = await collect(nc, `${q.output}.prog`);
    const worker = startWorker([
      '-u',
      server.url,
      '-j',
      box.jobsDir,
      '-w',
      box.workspacesDir,
      ...q.flags,
      '--id',
      'observer',
      '--max-jobs',
      '0',
      '--health-port',
      '0',
    ]);
    await ready(worker);
    const port = Number(/health server on port (\d+)/.exec(worker.stdout + worker.stderr)![1]);
    await submit(nc, q.input, { id: 'prog' });
    const reports = () => progress.json<Event>().filter((e) => e.progress);
    await waitFor(() => reports().length === 1);
    expect(reports()[0]).toMatchObject({
      state: 'running',
      progress: { percent: 50, message: 'halfway', step: { index: 0, name: 'compile' } },
    });
    await g.open();
    await results.waitFor(1);
    await waitFor(() => reports().length === 2);
    expect(reports()[1]!.progress).toMatchObject({ percent: 90, message: 'nearly' });
    expect((await box.readResult('prog')).progress).toMatchObject({ percent: 90 });

    // The counters move once the result is delivered, a moment after a subscriber sees it.
    const text = await waitFor(async () => {
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return sample(body, 'jw_jobs_finished_total{status="success"}') === 1 ? body : undefined;
    });
    expect(sample(text, 'jw_jobs_finished_total{status="success"}')).toBe(1);
    expect(sample(text, 'jw_job_duration_seconds_count{status="success"}')).toBe(1);
    expect(sample(text, 'jw_broker_connected')).toBe(1);
    expect(sample(text, 'jw_results_waiting')).toBe(0);
    expect(text).toMatch(/^jw_worker_info\{.*transport="nats".*\} 1$/m);
    worker.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
  });
});
