import type { Handlers, Logger, Transport, WorkerOptions } from '@jw/core';
import type { CommonKey, CommonSettings } from './common-options.js';
import type { InferOptions, OptionSpec, OptionTable } from './options.js';

export interface TransportSetup {
  transport: Transport;
  /** Worker options the app derives from its own settings (e.g. the jobs dir under a shared dir). */
  worker?: Partial<Omit<WorkerOptions, 'transport'>>;
}

/**
 * A worker binary: a name, the transport's option table, and how to make the transport
 * from the parsed values. `createTransport` should `import()` the transport, so that
 * `--help` and `--version` answer without loading it.
 */
export interface WorkerApp<O extends OptionTable = OptionTable> {
  name: string;
  version: string;
  description: string;
  /** Recorded as the transport name in dry runs (the real transport names itself). */
  transportName?: string;
  /** `MQTT` gives `MQTT_JOBS_DIR`, `MQTT_MAX_JOBS`, ...; also replaces `P_` in `options`' env names. */
  envPrefix: string;
  /** Defaults of the common settings (e.g. `maxJobs: 1` for one-shot workers). */
  defaults?: Partial<Record<CommonKey, string | number | boolean>>;
  /** Changes to a common setting's flags/env/default, or `false` to leave it out. */
  common?: Partial<Record<CommonKey, Partial<OptionSpec> | false>>;
  /** The transport's own settings, e.g. `natsOptions` from `@jw/transport-nats/flags`. */
  options?: O;
  /** More env names never passed to steps. */
  secretEnv?: string[];
  /** Handlers for `uses` steps, besides the built-ins (`defineHandler` results or a record). */
  handlers?: Handlers;
  /** Worker options derived from the app's settings, for the dry run as well as the real run. */
  workerOptions?(input: {
    options: InferOptions<O>;
    common: CommonSettings;
  }): Partial<Omit<WorkerOptions, 'transport'>>;
  createTransport(input: {
    options: InferOptions<O>;
    common: CommonSettings;
    logger: Logger;
  }): Transport | TransportSetup | Promise<Transport | TransportSetup>;
  /** Extra words for `--help`. */
  helpText?: string;
}

/** Exit codes (SPEC 10). */
export const EXIT = { OK: 0, FAULT: 1, BAD_SETTINGS: 2 } as const;

/** An app's settings, parsed and checked. */
export interface Settings<O extends OptionTable = OptionTable> {
  specs: Map<string, OptionSpec>;
  /** Every resolved value, by key (the common, containment and guard settings too). */
  values: Record<string, unknown>;
  options: InferOptions<O>;
  common: CommonSettings;
}
