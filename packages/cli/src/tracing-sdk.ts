import type {
  AttemptObserver,
  Logger,
  PhaseObserver,
  StepObserver,
  WorkerObserver,
} from '@jw/core';
import {
  type Attributes,
  type Context,
  DiagLogLevel,
  diag,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { TracingSettings, WorkerTracing } from './tracing.js';

/** `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, as the specification names them. */
function samplerOf(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
  const root = name.replace(/^parentbased_/, '');
  const base =
    root === 'always_off'
      ? new AlwaysOffSampler()
      : root === 'traceidratio'
        ? new TraceIdRatioBasedSampler(Number.isFinite(ratio) ? ratio : 1)
        : new AlwaysOnSampler();
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root: base }) : base;
}

function numberOf(value: string | undefined): number | undefined {
  const n = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

async function exporterOf(settings: TracingSettings): Promise<SpanExporter> {
  if (settings.protocol === 'http/json') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter();
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter();
}

const propagator = new W3CTraceContextPropagator();
const getter = {
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
  get: (carrier: Record<string, string>, key: string) => carrier[key],
};
const setter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

function ending(span: Span, ok: boolean, attributes: Attributes): void {
  span.setAttributes(attributes);
  if (!ok) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/**
 * Starts the SDK: one `jw.job` span per attempt, `jw.stage`, `jw.step`, `jw.sync` below it.
 * Spans are linked through explicit contexts: no global context manager is installed.
 */
export async function startWorkerTracing(
  app: { name: string; version: string },
  settings: TracingSettings,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<WorkerTracing> {
  // The SDK reports failed exports here only: into the worker's log, once per failure.
  const warn = (message: string, ...args: unknown[]) =>
    logger.warn({ otel: args.map(String).join(' ') }, `tracing: ${message}`);
  diag.setLogger(
    { error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} },
    DiagLogLevel.WARN,
  );
  const d = (name: string) => numberOf(env[name]);
  const processor = new BatchSpanProcessor({
    exporter: await exporterOf(settings),
    ...(d('OTEL_BSP_SCHEDULE_DELAY') === undefined
      ? {}
      : { scheduledDelayMillis: d('OTEL_BSP_SCHEDULE_DELAY') }),
    ...(d('OTEL_BSP_EXPORT_TIMEOUT') === undefined
      ? {}
      : { exportTimeoutMillis: d('OTEL_BSP_EXPORT_TIMEOUT') }),
    ...(d('OTEL_BSP_MAX_QUEUE_SIZE') === undefined
      ? {}
      : { maxQueueSize: d('OTEL_BSP_MAX_QUEUE_SIZE') }),
  });
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the binary's own name.
  const resource = resourceFromAttributes({
    'service.name': app.name,
    'service.version': app.version,
  }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new TracerProvider({
    resource,
    sampler: samplerOf(env),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('jw', app.version);

  const child = (parent: Context, name: string, attributes: Attributes) => {
    const span = tracer.startSpan(name, { attributes }, parent);
    return { span, ctx: trace.setSpan(parent, span) };
  };
  const phase = (parent: Context, name: string): PhaseObserver => {
    const { span } = child(parent, name, {});
    return {
      end: (r) =>
        ending(span, !r.errorCode, {
          'jw.files': r.files,
          'jw.bytes': r.bytes,
          ...(r.errorCode ? { 'jw.error_code': r.errorCode } : {}),
        }),
    };
  };

  const observer: WorkerObserver = {
    attempt(start): AttemptObserver {
      const parent = start.trace
        ? propagator.extract(ROOT_CONTEXT, { ...start.trace }, getter)
        : ROOT_CONTEXT;
      const job = child(parent, 'jw.job', {
        'jw.job.id': start.jobId,
        'jw.attempt': start.attempt,
        'jw.worker.id': start.workerId,
        'jw.recovered': start.recovered,
      });
      return {
        stage: () => phase(job.ctx, 'jw.stage'),
        sync: () => phase(job.ctx, 'jw.sync'),
        step(step): StepObserver {
          const s = child(job.ctx, 'jw.step', {
            'jw.step.index': step.index,
            'jw.step.name': step.name,
          });
          const carrier: Record<string, string> = {};
          propagator.inject(s.ctx, carrier, setter);
          return {
            env: {
              ...(carrier.traceparent ? { TRACEPARENT: carrier.traceparent } : {}),
              ...(carrier.tracestate ? { TRACESTATE: carrier.tracestate } : {}),
            },
            end: (r) =>
              ending(s.span, r.status === 'success', {
                'jw.step.status': r.status,
                ...(r.exitCode === null ? {} : { 'jw.step.exit_code': r.exitCode }),
                ...(r.signal === null ? {} : { 'jw.step.signal': r.signal }),
                'jw.step.duration_ms': r.durationMs,
              }),
          };
        },
        end: (r) =>
          ending(job.span, r.status === 'success', {
            'jw.job.status': r.status,
            ...(r.exitCode === null ? {} : { 'jw.job.exit_code': r.exitCode }),
            ...(r.errorCode ? { 'jw.error_code': r.errorCode } : {}),
          }),
      };
    },
  };
  return {
    observer,
    shutdown: () => provider.shutdown(),
  };
}
