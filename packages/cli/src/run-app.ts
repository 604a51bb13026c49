import path from 'node:path';
import {
  createWorker,
  describeContainment,
  ErrorCode,
  type Handlers,
  isJwError,
  JwError,
  type Logger,
  type Transport,
  type WorkerOptions,
  type WorkerSummary,
} from '@jw/core';
import { Command, CommanderError, Option } from 'commander';
import { COMMON_OPTIONS, type CommonKey, type CommonSettings, HOSTNAME } from './common-options.js';
import { CONTAINMENT_OPTIONS, containmentSettings } from './containment-options.js';
import { dryRun } from './dry-run.js';
import { type GuardSettings, guardSettings } from './guard-options.js';
import { startHealthServer } from './health.js';
import { createLogger } from './logger.js';
import { type Observing, startObserving } from './observe.js';
import { badSetting, longFlag, type OptionSpec, parseValue, typeOf } from './options.js';
import { withoutWorkerTuning } from './threadpool.js';

export interface TransportSetup {
  transport: Transport;
  /** Worker options the app derives from its own settings (e.g. the jobs dir under a shared dir). */
  worker?: Partial<Omit<WorkerOptions, 'transport'>>;
}

export interface WorkerApp {
  name: string;
  version: string;
  description: string;
  /** Recorded as the transport name in dry runs (the real transport names itself). */
  transportName?: string;
  /** `MQTT` gives `MQTT_JOBS_DIR`, `MQTT_MAX_JOBS`, ... */
  envPrefix: string;
  /** Defaults of the common settings (e.g. `maxJobs: 1` for one-shot workers). */
  defaults?: Partial<Record<CommonKey, string | number | boolean>>;
  /** Changes to a common setting's flags/env/default, or `false` to leave it out. */
  common?: Partial<Record<CommonKey, Partial<OptionSpec> | false>>;
  /** The transport's own settings. */
  options?: Record<string, OptionSpec>;
  /** More env names never passed to steps. */
  secretEnv?: string[];
  /** Handlers for `uses` steps, besides the built-ins (`defineHandler` results or a record). */
  handlers?: Handlers;
  /** Worker options derived from the app's settings, for the dry run as well as the real run. */
  workerOptions?(input: {
    options: Record<string, unknown>;
    common: CommonSettings;
  }): Partial<Omit<WorkerOptions, 'transport'>>;
  createTransport(input: {
    options: Record<string, unknown>;
    common: CommonSettings;
    logger: Logger;
  }): Transport | TransportSetup | Promise<Transport | TransportSetup>;
  /** Extra words for `--help`. */
  helpText?: string;
}

/** Exit codes (SPEC 10). */
export const EXIT = { OK: 0, FAULT: 1, BAD_SETTINGS: 2 } as const;

interface Resolved {
  specs: Map<string, OptionSpec>;
  values: Record<string, unknown>;
}

function commonSpecs(app: WorkerApp): Map<string, OptionSpec> {
  const specs = new Map<string, OptionSpec>();
  for (const [key, base] of Object.entries(COMMON_OPTIONS) as [CommonKey, OptionSpec][]) {
    const change = app.common?.[key];
    if (change === false) continue;
    const spec: OptionSpec = { ...base, ...change };
    if (spec.env) spec.env = spec.env.replace(/^P_/, `${app.envPrefix}_`);
    if (app.defaults?.[key] !== undefined && change?.default === undefined)
      spec.default = app.defaults[key] as string;
    specs.set(key, spec);
  }
  return specs;
}

function buildProgram(app: WorkerApp, specs: Map<string, OptionSpec>): Command {
  const program = new Command(app.name)
    .description(app.description)
    .version(app.version, '-V, --version')
    .helpOption('-h, --help')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const spec of specs.values()) {
    const envNote = spec.env ? ` [env ${spec.env}]` : '';
    const defNote =
      spec.default !== undefined && spec.default !== ''
        ? ` (default: ${String(spec.default)})`
        : '';
    program.addOption(new Option(spec.flags, `${spec.description}${envNote}${defNote}`));
  }
  if (app.helpText) program.addHelpText('after', `\n${app.helpText}`);
  return program;
}

/** Flag, else env, else default; each parsed and checked once, here at the edge. */
function resolveValues(
  program: Command,
  specs: Map<string, OptionSpec>,
  env: NodeJS.ProcessEnv,
): Resolved {
  const given = program.opts<Record<string, string | boolean | undefined>>();
  const values: Record<string, unknown> = {};
  for (const [key, spec] of specs) {
    const attribute = new Option(spec.flags).attributeName();
    // Only a flag on the command line counts: commander gives `--no-x` flags a default of its own.
    const flag = program.getOptionValueSource(attribute) === 'cli' ? given[attribute] : undefined;
    if (flag !== undefined) values[key] = parseValue(spec, flag, longFlag(spec));
    else if (spec.env && env[spec.env] !== undefined)
      values[key] = parseValue(spec, env[spec.env]!, spec.env);
    else if (spec.default !== undefined) {
      values[key] =
        Array.isArray(spec.default) || typeof spec.default !== 'string' || typeOf(spec) === 'string'
          ? spec.default
          : parseValue(spec, spec.default, `default of ${longFlag(spec)}`);
    }
  }
  return { specs, values };
}

function commonSettings(values: Record<string, unknown>): CommonSettings {
  const v = values as Record<CommonKey, never>;
  return {
    jobsDir: path.resolve(v.jobsDir ?? './jobs'),
    workspacesDir: path.resolve(v.workspacesDir ?? './workspaces'),
    id: v.id ?? 'worker-01',
    maxJobs: v.maxJobs ?? 0,
    concurrency: v.concurrency ?? 1,
    idleTimeoutMs: v.idleTimeout ?? 0,
    timeoutMs: v.timeout ?? 0,
    gracePeriodMs: v.gracePeriod ?? 30_000,
    killGraceMs: v.killGrace ?? 5_000,
    leaseMs: v.lease ?? 30_000,
    resultsRetries: v.resultsRetries ?? 3,
    resultsBackoffMs: v.resultsBackoff ?? 20_000,
    dryRun: v.dryRun ?? false,
    logFormat: v.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json'),
    logLevel: v.logLevel ?? 'info',
    healthPort: v.healthPort,
    hostname: HOSTNAME,
  };
}

function exitCodeOf(error: unknown): number {
  if (isJwError(error, ErrorCode.BAD_CONFIG)) return EXIT.BAD_SETTINGS;
  return EXIT.FAULT;
}

/**
 * Runs a worker binary: settings, logs, dry run, transport, worker, signals,
 * health. Resolves with the process exit code (SPEC 10).
 */
export async function runApp(
  app: WorkerApp,
  argv = process.argv,
  env = process.env,
): Promise<number> {
  const specs = commonSpecs(app);
  for (const [key, spec] of Object.entries(CONTAINMENT_OPTIONS))
    specs.set(key, {
      ...spec,
      ...(spec.env ? { env: spec.env.replace(/^P_/, `${app.envPrefix}_`) } : {}),
    });
  for (const [key, spec] of Object.entries(app.options ?? {})) specs.set(key, spec);
  const program = buildProgram(app, specs);
  let resolved: Resolved;
  let guard: GuardSettings;
  try {
    program.parse(argv);
    resolved = resolveValues(program, specs, env);
    guard = guardSettings(resolved.values);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.OK : EXIT.BAD_SETTINGS;
    }
    process.stderr.write(`${app.name}: ${(error as Error).message}\n`);
    return EXIT.BAD_SETTINGS;
  }
  const common = commonSettings(resolved.values);
  let containment: Awaited<ReturnType<typeof containmentSettings>>;
  try {
    containment = await containmentSettings(resolved.values);
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
    ...(common.timeoutMs ? { jobTimeoutMs: common.timeoutMs } : {}),
    ...(app.handlers ? { handlers: app.handlers } : {}),
    ...app.workerOptions?.({ options: resolved.values, common }),
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
    const setup = await app.createTransport({ options: resolved.values, common, logger });
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
    const health =
      common.healthPort !== undefined
        ? await startHealthServer(
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
          containment: describeContainment(containment.limits, containment.runAs),
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

/** `runApp` for a bin entry: exits the process with its code once logs are flushed. */
export function runWorkerApp(app: WorkerApp): void {
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

export { badSetting };
