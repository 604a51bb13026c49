import { silentLogger } from '@jw/core';
import { startOtlpReceiver } from '@jw/testing/otlp';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorkerTracing, tracingSettings } from './tracing.js';

const app = { name: 'test-worker', version: '1.2.3' };
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CONTROLLER_SPAN = '00f067aa0ba902b7';

describe('tracingSettings', () => {
  it('is off without an endpoint, or when OTel is told to be off', () => {
    expect(tracingSettings({})).toBeUndefined();
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' };
    expect(tracingSettings({ ...endpoint, OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettings({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(tracingSettings(endpoint)).toEqual({ protocol: 'http/protobuf' });
    expect(
      tracingSettings({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1/v1/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      }),
    ).toEqual({ protocol: 'http/json' });
  });
  it('refuses what it cannot send', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' };
    expect(() => tracingSettings({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /grpc is not supported/,
    );
    expect(() => tracingSettings({ ...endpoint, OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(
      /zipkin/,
    );
  });
});

describe('createWorkerTracing', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('loads nothing and returns undefined with no endpoint', async () => {
    expect(await createWorkerTracing(app, {}, silentLogger)).toBeUndefined();
  });

  it('exports jw.job with stage, step and sync children in the controller trace', async () => {
    const receiver = await startOtlpReceiver();
    try {
      Object.assign(process.env, {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'svc-from-env',
      });
      const tracing = await createWorkerTracing(app, process.env, silentLogger);
      const attempt = tracing!.observer.attempt!({
        jobId: 'j1',
        attempt: 1,
        workerId: 'w1',
        recovered: false,
        trace: { traceparent: `00-${TRACE}-${CONTROLLER_SPAN}-01` },
      })!;
      attempt.stage!()!.end({ durationMs: 5, files: 2, bytes: 10 });
      const step = attempt.step!({ index: 0, name: 'build' })!;
      expect(step.env?.TRACEPARENT).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
      step.end({ status: 'failed', exitCode: 3, signal: null, durationMs: 7 });
      attempt.sync!()!.end({ durationMs: 1, files: 1, bytes: 4 });
      attempt.end!({ status: 'failed', exitCode: 3, durationMs: 20, errorCode: 'STEP_FAILED' });
      await tracing!.shutdown();
      await receiver.waitFor((spans) => spans.length >= 4);
      const byName = Object.fromEntries(receiver.spans.map((s) => [s.name, s]));
      const job = byName['jw.job']!;
      expect(job.traceId).toBe(TRACE);
      expect(job.parentSpanId).toBe(CONTROLLER_SPAN);
      expect(job.attributes).toMatchObject({ 'jw.job.id': 'j1', 'jw.job.status': 'failed' });
      expect(job.statusCode).toBe(2);
      expect(job.resource['service.name']).toBe('svc-from-env');
      for (const name of ['jw.stage', 'jw.step', 'jw.sync']) {
        expect(byName[name]!.parentSpanId).toBe(job.spanId);
        expect(byName[name]!.traceId).toBe(TRACE);
      }
      expect(byName['jw.step']!.attributes).toMatchObject({
        'jw.step.index': 0,
        'jw.step.name': 'build',
        'jw.step.exit_code': 3,
      });
      expect(step.env?.TRACEPARENT).toContain(byName['jw.step']!.spanId);
      expect(byName['jw.stage']!.attributes).toMatchObject({ 'jw.files': 2, 'jw.bytes': 10 });
    } finally {
      await receiver.close();
    }
  });

  it('sends http/protobuf when no protocol is named (the OTLP default)', async () => {
    const receiver = await startOtlpReceiver();
    try {
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
      delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
      const tracing = await createWorkerTracing(app, process.env, silentLogger);
      const attempt = tracing!.observer.attempt!({
        jobId: 'j2',
        attempt: 1,
        workerId: 'w1',
        recovered: true,
      })!;
      attempt.end!({ status: 'success', exitCode: 0, durationMs: 1 });
      await tracing!.shutdown();
      expect(receiver.contentTypes).toContain('application/x-protobuf');
    } finally {
      await receiver.close();
    }
  });
});
