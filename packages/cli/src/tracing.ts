import type { Logger, WorkerObserver } from '@jw/core';

/** The OTLP protocols this worker can send (grpc would need a heavy client). */
const PROTOCOLS = ['http/protobuf', 'http/json'] as const;
type Protocol = (typeof PROTOCOLS)[number];

export interface TracingSettings {
  protocol: Protocol;
}

/**
 * Whether OpenTelemetry's own settings ask for traces (SPEC 11): an OTLP endpoint is
 * set, and neither `OTEL_SDK_DISABLED` nor `OTEL_TRACES_EXPORTER=none` turns them off.
 * Throws a message for people on a setting this worker cannot honour.
 */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp')
    .split(',')
    .map((e) => e.trim().toLowerCase());
  if (exporters.includes('none')) return undefined;
  if (!(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT))
    return undefined;
  const unknown = exporters.filter((e) => e !== 'otlp' && e !== '');
  if (unknown.length > 0)
    throw new Error(`OTEL_TRACES_EXPORTER ${unknown.join(',')} is not supported (only otlp)`);
  const protocol = (
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
    env.OTEL_EXPORTER_OTLP_PROTOCOL ??
    'http/protobuf'
  ).trim();
  if (!(PROTOCOLS as readonly string[]).includes(protocol))
    throw new Error(`OTLP protocol ${protocol} is not supported (use ${PROTOCOLS.join(' or ')})`);
  return { protocol: protocol as Protocol };
}

export interface WorkerTracing {
  readonly observer: WorkerObserver;
  /** Sends the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry tracing for a worker, or undefined when no endpoint is set: then no
 * OTel module is loaded at all. The exporters read their own `OTEL_EXPORTER_OTLP_*`
 * settings (endpoint, headers, timeout, compression) from the process env.
 */
export async function createWorkerTracing(
  app: { name: string; version: string },
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<WorkerTracing | undefined> {
  const settings = tracingSettings(env);
  if (!settings) return undefined;
  const { startWorkerTracing } = await import('./tracing-sdk.js');
  const tracing = await startWorkerTracing(app, settings, env, logger);
  logger.info({ protocol: settings.protocol }, 'tracing to OTLP');
  return tracing;
}
