import './threadpool.js';

export * from './app.js';
export { DRY_RUN_PAYLOAD, dryRun } from './dry-run.js';
export { startHealthServer } from './health.js';
export { createLogger, normalizeLevel } from './logger.js';
export { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
export { type Observing, startObserving } from './observe.js';
export { createWorkerTracing, tracingSettings, type WorkerTracing } from './tracing.js';
