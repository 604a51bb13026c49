import path from 'node:path';
import { Command, CommanderError, Option as CommanderOption } from 'commander';
import { COMMON_OPTIONS, type CommonKey, type CommonSettings, HOSTNAME } from './common-options.js';
import { CONTAINMENT_OPTIONS } from './containment-options.js';
import {
  type InferOptions,
  longFlag,
  type OptionSpec,
  type OptionTable,
  parseValue,
  typeOf,
} from './options.js';
import { EXIT, type Settings, type WorkerApp } from './worker-app.js';

type Common = Partial<InferOptions<typeof COMMON_OPTIONS>>;

const withPrefix = (spec: OptionSpec, prefix: string): OptionSpec =>
  spec.env?.startsWith('P_') ? { ...spec, env: spec.env.replace(/^P_/, `${prefix}_`) } : spec;

type Declared = Pick<WorkerApp, 'envPrefix' | 'defaults' | 'common'> & { options?: OptionTable };

function specsOf(app: Declared): Map<string, OptionSpec> {
  const specs = new Map<string, OptionSpec>();
  for (const [key, base] of Object.entries(COMMON_OPTIONS) as [CommonKey, OptionSpec][]) {
    const change = app.common?.[key];
    if (change === false) continue;
    const spec: OptionSpec = { ...base, ...change };
    if (app.defaults?.[key] !== undefined && change?.default === undefined)
      spec.default = app.defaults[key];
    specs.set(key, withPrefix(spec, app.envPrefix));
  }
  for (const [key, spec] of Object.entries(CONTAINMENT_OPTIONS))
    specs.set(key, withPrefix(spec, app.envPrefix));
  for (const [key, spec] of Object.entries(app.options ?? {}))
    specs.set(key, withPrefix(spec, app.envPrefix));
  return specs;
}

function buildProgram(
  app: Pick<WorkerApp, 'name' | 'version' | 'description' | 'helpText'>,
  specs: Map<string, OptionSpec>,
): Command {
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
    program.addOption(new CommanderOption(spec.flags, `${spec.description}${envNote}${defNote}`));
  }
  if (app.helpText) program.addHelpText('after', `\n${app.helpText}`);
  return program;
}

/** Flag, else env, else default; each parsed and checked once, here at the edge. */
function resolveValues(
  program: Command,
  specs: Map<string, OptionSpec>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const given = program.opts<Record<string, string | boolean | undefined>>();
  const values: Record<string, unknown> = {};
  for (const [key, spec] of specs) {
    const attribute = new CommanderOption(spec.flags).attributeName();
    // Only a flag on the command line counts: commander gives `--no-x` flags a default of its own.
    const flag = program.getOptionValueSource(attribute) === 'cli' ? given[attribute] : undefined;
    if (flag !== undefined) values[key] = parseValue(spec, flag, longFlag(spec));
    else if (spec.env && env[spec.env] !== undefined)
      values[key] = parseValue(spec, env[spec.env]!, spec.env);
    else if (spec.default !== undefined) {
      values[key] =
        typeof spec.default !== 'string' || typeOf(spec) === 'string'
          ? spec.default
          : parseValue(spec, spec.default, `default of ${longFlag(spec)}`);
    }
  }
  return values;
}

function commonSettings(v: Common): CommonSettings {
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
    logFormat: v.logFormat === 'json' || v.logFormat === 'pretty' ? v.logFormat : defaultFormat(),
    logLevel: v.logLevel ?? 'info',
    healthPort: v.healthPort,
    hostname: HOSTNAME,
  };
}

const defaultFormat = () => (process.stderr.isTTY ? 'pretty' : 'json');

/**
 * Parses an app's command line and env. `--help`, `--version` and bad settings give the
 * exit code at once; nothing here loads the worker, the logger or the transport.
 */
export function parseSettings<O extends OptionTable>(
  app: WorkerApp<O>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Settings<O> | { exit: number } {
  const specs = specsOf(app);
  const program = buildProgram(app, specs);
  try {
    program.parse(argv as string[]);
    const values = resolveValues(program, specs, env);
    const own = Object.fromEntries(Object.keys(app.options ?? {}).map((k) => [k, values[k]]));
    // The one place parsed values meet their declared types: parseValue made them so.
    return {
      specs,
      values,
      options: own as InferOptions<O>,
      common: commonSettings(values as Common),
    };
  } catch (error) {
    if (error instanceof CommanderError)
      return { exit: error.exitCode === 0 ? EXIT.OK : EXIT.BAD_SETTINGS };
    process.stderr.write(`${app.name}: ${(error as Error).message}\n`);
    return { exit: EXIT.BAD_SETTINGS };
  }
}
