export type OptionType = 'string' | 'int' | 'boolean' | 'duration' | 'list';
export type DurationUnit = 'ms' | 's' | 'm' | 'h';

/** One setting of an app: a flag, an env fallback, a default, a type. */
export interface OptionSpec {
  /** commander flags, e.g. `-u, --url <url>` or `--clean`. */
  flags: string;
  description: string;
  /** Env var read when the flag is not given. A leading `P_` becomes the app's env prefix. */
  env?: string;
  default?: string | number | boolean | readonly string[];
  /** Default 'string' ('boolean' when the flags take no value). */
  type?: OptionType;
  /** For durations: the unit of a bare number. Values may also carry one (`90s`, `5m`). Parsed to ms. */
  unit?: DurationUnit;
  /** Allowed values. */
  choices?: readonly string[];
  /** The env var holds a credential: never passed to steps, never logged. */
  secret?: boolean;
  /** Smallest allowed number (int and duration). */
  min?: number;
}

declare const parsed: unique symbol;

/** An OptionSpec that also carries the TypeScript type of its parsed value (type-only). */
export interface Option<V> extends OptionSpec {
  readonly [parsed]: V;
}

export type OptionTable = Record<string, OptionSpec>;

/** Without a default (or an env/flag), an option is undefined. */
type Maybe<S, V> = S extends { default: string | number | boolean | readonly string[] }
  ? V
  : V | undefined;

/** What a plain `{flags, type, ...}` literal parses to, for tables written without the helpers. */
type Loose<S extends OptionSpec> = Maybe<
  S,
  S extends { type: 'int' | 'duration' }
    ? number
    : S extends { type: 'boolean' }
      ? boolean
      : S extends { type: 'list' }
        ? string[]
        : S extends { choices: readonly (infer C extends string)[] }
          ? C
          : string
>;

/** The parsed value of one option. */
export type ValueOf<S extends OptionSpec> = S extends Option<infer V> ? V : Loose<S>;

/** The parsed settings of a table: `InferOptions<typeof natsOptions>`. */
export type InferOptions<T extends OptionTable> = string extends keyof T
  ? Record<string, unknown>
  : { -readonly [K in keyof T]: ValueOf<T[K]> };

type Base = Pick<OptionSpec, 'flags' | 'description' | 'env' | 'secret'>;

const typed = <V>(spec: OptionSpec): Option<V> => spec as Option<V>;

/**
 * Builders for option tables: each gives the spec and its parsed type.
 * Durations parse to milliseconds; `flag` is false unless set.
 */
export const option = {
  string: <const S extends Base & { default?: string }>(spec: S): Option<Maybe<S, string>> =>
    typed({ ...spec, type: 'string' }),
  choice: <const C extends readonly string[], const S extends Base & { default?: C[number] }>(
    choices: C,
    spec: S,
  ): Option<Maybe<S, C[number]>> => typed({ ...spec, type: 'string', choices }),
  int: <const S extends Base & { default?: number; min?: number }>(
    spec: S,
  ): Option<Maybe<S, number>> => typed({ ...spec, type: 'int' }),
  duration: <const S extends Base & { unit: DurationUnit; default?: string; min?: number }>(
    spec: S,
  ): Option<Maybe<S, number>> => typed({ ...spec, type: 'duration' }),
  flag: (spec: Base & { default?: boolean }): Option<boolean> =>
    typed({ default: false, ...spec, type: 'boolean' }),
  list: <const S extends Base & { default?: readonly string[] }>(
    spec: S,
  ): Option<Maybe<S, string[]>> => typed({ ...spec, type: 'list' }),
};

/** Keeps a table's literal types, so `InferOptions<typeof table>` is exact. */
export function defineOptions<const T extends OptionTable>(table: T): T {
  return table;
}
