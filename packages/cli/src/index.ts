import './threadpool.js';

export { COMMON_OPTIONS, type CommonKey, type CommonSettings } from './common-options.js';
export { DRY_RUN_PAYLOAD, dryRun } from './dry-run.js';
export { startHealthServer } from './health.js';
export { createLogger, normalizeLevel } from './logger.js';
export { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
export { type Observing, startObserving } from './observe.js';
export {
  badSetting,
  type DurationUnit,
  type OptionSpec,
  type OptionType,
  parseBoolean,
  parseDuration,
  parseValue,
} from './options.js';
export { EXIT, runApp, runWorkerApp, type TransportSetup, type WorkerApp } from './run-app.js';
export { createWorkerTracing, tracingSettings, type WorkerTracing } from './tracing.js';
