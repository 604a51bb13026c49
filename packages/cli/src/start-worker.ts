import path from 'node:path';
import {
  createWorker,
  describeContainment,
  ErrorCode,
  isJwError,
  JwError,
  type WorkerSummary,
} from '@jw/core';
import { type ContainmentSettings, containmentSettings } from './containment-settings.js';
import { dryRun } from './dry-run.js';
import { type GuardSettings, guardSettings } from './guard-settings.js';
import { createLogger } from './logger.js';
import { type Observing, startObserving } from './observe.js';
import type { OptionTable } from './options.js';
import { withoutWorkerTuning } from './threadpool.js';
import { EXIT, type Settings, type WorkerApp } from './worker-app.js';

function exitCodeOf(error: unknown): number {
  if (isJwError(error, ErrorCode.BAD_CONFIG)) return EXIT.BAD_SETTINGS;
  return EXIT.FAULT;
}

/**
 * The running half of `runApp`, loaded only once the settings are good: logs, dry run,
 * transport, worker, signals, health. Resolves with the exit code (SPEC 10).
 */
export async function startWorker<O extends OptionTable>(
  app: WorkerApp<O>,
  { specs, values, options, common }: Settings<O>,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  let guard: GuardSettings;
  let containment: ContainmentSettings;
  try {
    guard = guardSettings(values);
    containment = await containmentSettings(values);
  } catch (error) {
    process.stderr.write(`${app.name}: ${(error as Error).message}\n`);
    return EXIT.BAD_SETTINGS;
  }
  const logger = await createLogger({
    name: app.name,
    level: common.logLevel,
    format: common.logFormat,
  });
  const secretEnv = [
    ...(app.secretEnv ?? []),
    ...[...specs.values()].filter((s) => s.secret && s.env).map((s) => s.env!),
  ];
  const base = {
    jobsDir: common.jobsDir,
    workspacesDir: common.workspacesDir,
    workerId: common.id,
    version: app.version,
    concurrency: common.concurrency,
    maxJobs: common.maxJobs,
    idleTimeoutMs: common.idleTimeoutMs,
    stopGraceMs: common.gracePeriodMs,
    killGraceMs: common.killGraceMs,
    leaseMs: common.leaseMs,
    resultsRetries: common.resultsRetries,
    resultsBackoffMs: common.resultsBackoffMs,
    logger,
    secretEnv,
    env: withoutWorkerTuning(env),
    limits: containment.limits,
    ...(containment.runAs ? { runAs: containment.runAs } : {}),
    ...(containment.cgroup ? { cgroup: containment.cgroup } : {}),
    ...(common.timeoutMs ? { jobTimeoutMs: common.timeoutMs } : {}),
    ...(app.handlers ? { handlers: app.handlers } : {}),
    ...app.workerOptions?.({ options, common }),
  };
  let observing: Observing | undefined;
  try {
    // Metrics only with a health port to serve them; traces whenever OTEL_* name an endpoint.
    observing = await startObserving(
      app,
      common.dryRun ? undefined : common.healthPort,
      env,
      logger,
    );
    if (common.dryRun) {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(base.jobsDir, { recursive: true });
      const result = await dryRun(
        { ...base, observers: observing.observers },
        app.transportName ?? app.name,
      );
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return result.status === 'success' ? EXIT.OK : EXIT.FAULT;
    }
    const setup = await app.createTransport({ options, common, logger });
    const { transport, worker: extra } =
      'transport' in setup ? setup : { transport: setup, worker: undefined };
    const worker = createWorker({
      ...base,
      // Not in the dry run: it runs one job now, whatever the disk.
      ...guard,
      ...extra,
      transport,
      secretEnv: [...secretEnv, ...(transport.secretEnv ?? [])],
      observers: observing.observers,
    });
    observing.attach(worker, transport);
    worker.on('result', (result) => {
      const results = path.join(extra?.jobsDir ?? base.jobsDir, result.id, 'results');
      const why = result.error ? `: ${result.errorCode} ${result.error}` : '';
      const where = result.manifestFile ? `; results in ${results}` : '';
      logger.info(
        {
          jobId: result.id,
          status: result.status,
          exitCode: result.exitCode,
          ...(result.errorCode ? { errorCode: result.errorCode, error: result.error } : {}),
          results,
        },
        `job ${result.id} ${result.status}${why}${where}`,
      );
    });
    let stopping = false;
    let terminated = false;
    const stop = (signal: NodeJS.Signals, graceMs: number) => {
      stopping = true;
      logger.info({ signal, graceMs }, 'stopping');
      worker.stop(graceMs).catch(() => {});
    };
    // A second SIGTERM/SIGINT cuts the grace short; one after SIGUSR1 brings the normal grace.
    const onTerm = (signal: NodeJS.Signals) => {
      stop(signal, terminated ? 0 : common.gracePeriodMs);
      terminated = true;
    };
    // SIGUSR1: finish what runs, take nothing new, then exit.
    const onDrain = () => stop('SIGUSR1', 2 ** 31 - 1);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
    process.on('SIGUSR1', onDrain);
    // node:http only with a health port: loading it costs a waiting worker ~2 MiB.
    const health =
      common.healthPort !== undefined
        ? await (await import('./health.js')).startHealthServer(
            common.healthPort,
            worker,
            () => !stopping && worker.readiness().ready,
            observing.metrics,
          )
        : undefined;
    if (health) {
      const address = health.address();
      const port = typeof address === 'object' && address ? address.port : common.healthPort;
      logger.info({ healthPort: port }, `health server on port ${port}`);
    }
    try {
      logger.info(
        {
          worker: common.id,
          transport: transport.name,
          jobsDir: extra?.jobsDir ?? base.jobsDir,
          maxJobs: extra?.maxJobs ?? base.maxJobs,
          concurrency: extra?.concurrency ?? base.concurrency,
          containment: describeContainment(
            containment.limits,
            containment.runAs,
            containment.cgroup,
          ),
        },
        'worker started',
      );
      const summary: WorkerSummary = await worker.run();
      logger.info(
        { handled: summary.handled, rejected: summary.rejected, reason: summary.reason },
        'worker finished',
      );
      return EXIT.OK;
    } finally {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      process.off('SIGUSR1', onDrain);
      health?.close();
    }
  } catch (error) {
    const code = exitCodeOf(error);
    // Expected failures (bad settings, a fault with a code) are one line; only a bug gets a stack.
    if (error instanceof JwError)
      logger.error({ code: error.code, err: error.message }, `worker failed: ${error.message}`);
    else logger.error({ err: error }, 'worker failed');
    return code;
  } finally {
    await observing?.close();
  }
}
