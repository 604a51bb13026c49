import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, gate, type Sandbox, waitFor } from '@jw/testing/fs';
import { startOtlpReceiver } from '@jw/testing/otlp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killWorkers, queue, startWorker } from './helpers.js';

let box: Sandbox;
let q: ReturnType<typeof queue>;
beforeEach(async () => {
  box = await createSandbox('jw-file-worker-observe-');
  q = queue(box);
});
afterEach(async () => {
  await killWorkers();
  await box.cleanup();
});

/** The value of one sample line (`name{labels} value`) of a Prometheus exposition. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const CONTROLLER_SPAN = 'b7ad6b7169203331';

describe('file-worker: metrics, traces, progress', () => {
  it('serves /metrics with jobs by status, durations, rejections and process metrics', async () => {
    const w = startWorker(box, ['--health-port', '0']);
    await w.waitForOutput('health server on port');
    const port = Number(/health server on port (\d+)/.exec(w.stderr)![1]);
    await box.makeJob('good', { steps: ['echo ok > out.txt'] }, { 'in.txt': 'hello' });
    await q.drop('good.json', { id: 'good' });
    await q.drop('bad.json', { id: 'bad', steps: ['exit 7'] });
    await q.drop('junk.json', '{"id": "junk", "steps": 12}');
    await waitFor(async () => (await q.result('good')) && (await q.result('bad')));
    await waitFor(async () => (await q.result('junk')).errorCode === 'BAD_REQUEST');
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(sample(text, 'jw_jobs_finished_total{status="success"}')).toBe(1);
    expect(sample(text, 'jw_jobs_finished_total{status="failed"}')).toBe(1);
    expect(sample(text, 'jw_job_duration_seconds_count{status="success"}')).toBe(1);
    expect(sample(text, 'jw_job_duration_seconds_count{status="failed"}')).toBe(1);
    expect(sample(text, 'jw_step_duration_seconds_count{status="failed"}')).toBe(1);
    expect(sample(text, 'jw_stage_duration_seconds_count{result="ok"}')).toBe(2);
    expect(sample(text, 'jw_stage_bytes_total')).toBeGreaterThanOrEqual(5);
    expect(sample(text, 'jw_sync_files_total')).toBe(1);
    expect(sample(text, 'jw_deliveries_rejected_total{reason="BAD_REQUEST"}')).toBe(1);
    expect(sample(text, 'jw_jobs_running')).toBe(0);
    expect(sample(text, 'jw_results_waiting')).toBe(0);
    expect(sample(text, 'jw_recoveries_total')).toBe(0);
    expect(text).toMatch(/^jw_worker_info\{.*transport="file".*\} 1$/m);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    // A folder has no broker connection to show.
    expect(text).not.toContain('jw_broker_connected');
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  });

  it('exports the job as spans in the trace of its traceparent; steps see TRACEPARENT and report progress', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const g = gate(box.root);
      await q.drop('traced.json', {
        id: 'traced',
        traceparent: `00-${TRACE}-${CONTROLLER_SPAN}-01`,
        steps: [
          {
            name: 'build',
            run: `echo "$TRACEPARENT" > tp.txt; echo "50 halfway" >> "$JW_PROGRESS"; ${g.wait}`,
          },
          { name: 'test', run: 'exit 3' },
        ],
        artifacts: { include: ['tp.txt'] },
      });
      const w = startWorker(box, ['--max-jobs', '1'], {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'file-worker-test',
      });
      // The step's report reaches the queue's progress file while the step still runs.
      const progressFile = path.join(q.dir('progress'), 'traced.json');
      const event = await waitFor(async () => {
        const e = JSON.parse(await readFile(progressFile, 'utf8'));
        return e.progress ? e : undefined;
      });
      expect(event).toMatchObject({
        jobId: 'traced',
        state: 'running',
        progress: { percent: 50, message: 'halfway', step: { index: 0, name: 'build' } },
      });
      await g.open();
      expect((await w.exited).code).toBe(0);
      expect(await q.result('traced')).toMatchObject({ status: 'failed', exitCode: 3 });
      const manifest = await box.readResult('traced');
      expect(manifest.progress).toMatchObject({ percent: 50, message: 'halfway' });

      // Every span was sent before the worker exited.
      await receiver.waitFor((spans) => spans.filter((s) => s.name === 'jw.step').length === 2);
      const job = receiver.spans.find((s) => s.name === 'jw.job')!;
      expect(job.traceId).toBe(TRACE);
      expect(job.parentSpanId).toBe(CONTROLLER_SPAN);
      expect(job.attributes).toMatchObject({
        'jw.job.id': 'traced',
        'jw.attempt': 1,
        'jw.job.status': 'failed',
        'jw.job.exit_code': 3,
      });
      expect(job.resource['service.name']).toBe('file-worker-test');
      const children = receiver.spans.filter((s) => s.parentSpanId === job.spanId);
      expect(children.map((s) => s.name).sort()).toEqual([
        'jw.stage',
        'jw.step',
        'jw.step',
        'jw.sync',
      ]);
      const steps = children.filter((s) => s.name === 'jw.step');
      const build = steps.find((s) => s.attributes['jw.step.index'] === 0)!;
      const test = steps.find((s) => s.attributes['jw.step.index'] === 1)!;
      expect(build.attributes).toMatchObject({ 'jw.step.name': 'build', 'jw.step.exit_code': 0 });
      expect(test.attributes).toMatchObject({
        'jw.step.name': 'test',
        'jw.step.exit_code': 3,
        'jw.step.status': 'failed',
      });
      expect(test.statusCode).toBe(2);
      const seen = await readFile(path.join(box.jobsDir, 'traced/results/tp.txt'), 'utf8');
      expect(seen.trim()).toBe(`00-${TRACE}-${build.spanId}-01`);
    } finally {
      await receiver.close();
    }
  });

  it('exits 2 on an OTLP protocol it cannot send', async () => {
    const w = startWorker(box, ['--max-jobs', '1'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    expect((await w.exited).code).toBe(2);
    expect(w.stderr).toContain('OTLP protocol grpc is not supported');
  });
});
