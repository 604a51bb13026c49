import type { OptionTable } from './options.js';
import { parseSettings } from './settings.js';
import { EXIT, type WorkerApp } from './worker-app.js';

/**
 * Runs a worker binary: settings, logs, dry run, transport, worker, signals,
 * health. Resolves with the process exit code (SPEC 10). `--help`, `--version` and
 * bad settings answer before the worker half (core, pino) is loaded.
 */
export async function runApp<O extends OptionTable>(
  app: WorkerApp<O>,
  argv: readonly string[] = process.argv,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const settings = parseSettings(app, argv, env);
  if ('exit' in settings) return settings.exit;
  const { startWorker } = await import('./start-worker.js');
  return startWorker(app, settings, env);
}

/** `runApp` for a bin entry: exits the process with its code once logs are flushed. */
export function runWorkerApp<O extends OptionTable>(app: WorkerApp<O>): void {
  runApp(app).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(
        `${app.name}: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      process.exit(EXIT.FAULT);
    },
  );
}

export { badSetting } from './options.js';
export { EXIT, type TransportSetup, type WorkerApp } from './worker-app.js';
