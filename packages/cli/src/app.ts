// `@jw/cli/app`: what a worker binary's entry needs, and nothing heavy. Parsing the
// command line loads commander and the option tables only; the worker, core and pino
// are imported once the settings are good (issue 14: `--version` near a bare node).
import './threadpool.js';

export { COMMON_OPTIONS, type CommonKey, type CommonSettings } from './common-options.js';
export * from './options.js';
export { EXIT, runApp, runWorkerApp, type TransportSetup, type WorkerApp } from './run-app.js';
