import {
  ErrorCode,
  JwError,
  type Logger,
  type Transport,
  type Worker,
  type WorkerObserver,
} from '@jw/core';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { createWorkerTracing } from './tracing.js';

export interface Observing {
  /** For `createWorker({ observers })`. */
  readonly observers: WorkerObserver[];
  /** Set when there is a health port to serve them on. */
  readonly metrics: WorkerMetrics | undefined;
  /** Starts counting the worker's results and reading its transport's connection. */
  attach(worker: Worker, transport: Transport): void;
  /** Sends what tracing still buffers (before the process exits). */
  close(): Promise<void>;
}

/**
 * Metrics when a health port is set, traces when OpenTelemetry's settings name an
 * endpoint (SPEC 11). Neither loads its library unless it is used.
 */
export async function startObserving(
  app: { name: string; version: string },
  healthPort: number | undefined,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<Observing> {
  const metrics = healthPort === undefined ? undefined : await createWorkerMetrics(app);
  const tracing = await createWorkerTracing(app, env, logger).catch((error: Error) => {
    throw new JwError(ErrorCode.BAD_CONFIG, error.message);
  });
  return {
    observers: [metrics?.observer, tracing?.observer].filter((o) => o !== undefined),
    metrics,
    attach(worker, transport) {
      metrics?.attach(worker, transport.connected ? () => transport.connected?.() : undefined);
    },
    async close() {
      await tracing
        ?.shutdown()
        .catch((error) => logger.warn({ err: error }, 'could not send the last spans'));
    },
  };
}
