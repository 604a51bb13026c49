/**
 * The types of `uses` steps (SPEC 3): a handler is a named in-process function with its
 * own input schema, called with a context that gives it what a shell step gets.
 */

/**
 * Standard Schema v1 (https://standardschema.dev), the part jw calls. zod (3.24+ and 4),
 * Valibot and ArkType schemas all implement it; the interface is copied, as the spec asks,
 * so that core depends on no schema library's types.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

export interface StandardSchemaIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** A schema with a zod-like `safeParse` (zod 3, yup adapters, hand-written checks). */
export interface SafeParseSchema<Output = unknown> {
  safeParse(value: unknown): { success: true; data: Output } | { success: false; error: unknown };
}

/** What a handler's `schema` may be: a Standard Schema, or anything with `safeParse`. */
export type HandlerSchema<Output = unknown> =
  | StandardSchemaV1<unknown, Output>
  | SafeParseSchema<Output>;

/** The validated input type of a schema. */
export type InferInput<S> =
  S extends StandardSchemaV1<unknown, infer O> ? O : S extends SafeParseSchema<infer O> ? O : never;

/** The step's log as a handler sees it. The runner closes it when the step ends. */
export interface HandlerLog {
  /** Appends text to `results/step_N.log`. */
  write(text: string): void;
  /** The same file as a stream, to pipe into (`source.pipe(ctx.log.stream, { end: false })`). */
  readonly stream: NodeJS.WritableStream;
}

export interface HandlerContext {
  /** The step being run: its index (the log is `step_{index}.log`) and name. */
  readonly step: { readonly index: number; readonly name: string };
  /** The job's workspace (the staged copy of the job dir). */
  readonly workspace: string;
  /** The step's `cwd` inside the workspace (the workspace when not set). */
  readonly cwd: string;
  /** The step's env, built as for shell steps (worker secrets removed, job and step env, `JW_*`). */
  readonly env: Readonly<Record<string, string>>;
  readonly log: HandlerLog;
  /** Aborted on time-out, cancel, shutdown or a lost claim; a handler should stop soon after. */
  readonly signal: AbortSignal;
  /**
   * Reports progress: `percent` from 0 to 100 (clamped), an optional message. Always noted
   * in the step log; forwarded to the worker when it listens.
   */
  progress(percent: number, message?: string): void;
}

/** What `run` may return. Nothing (or `exitCode: 0`) is success. */
export interface HandlerResult {
  /** Non-zero fails the step with this exit code. */
  exitCode?: number;
  /** Facts about the step for the manifest's `steps[].output` (JSON values only). */
  output?: Record<string, unknown>;
  /** With a non-zero `exitCode`: why the step failed, for the manifest's `steps[].error`. */
  error?: string;
}

export interface Handler<Input = unknown> {
  /** The name `uses` refers to, such as `http.request`. */
  readonly name: string;
  /** Checks `with` before the job starts; `run` gets the schema's output. */
  readonly schema: HandlerSchema<Input>;
  /** Fails the step by throwing or by returning a non-zero `exitCode`. */
  run(ctx: HandlerContext, input: Input): Promise<HandlerResult | undefined | void>;
}

/** A handler of any input, as registries hold them. */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds handlers of every input type.
export type AnyHandler = Handler<any>;

/** The context of a bare-function handler (the form before `defineHandler`; still accepted). */
export interface StepHandlerContext {
  with: Record<string, unknown>;
  env: Record<string, string>;
  cwd: string;
  workspace: string;
  /** Writes into the step's log. */
  log: NodeJS.WritableStream;
  signal: AbortSignal;
}

/** A bare-function handler: no schema, `with` passed as it is. */
export type StepHandler = (context: StepHandlerContext) => Promise<void | { exitCode?: number }>;

/**
 * Handlers given to a worker: `defineHandler` results in an array (registered by their
 * names) or a record from `uses` name to a handler or a bare function.
 */
export type Handlers = readonly AnyHandler[] | Readonly<Record<string, AnyHandler | StepHandler>>;

/** A progress report of a running step (from `ctx.progress`). */
export interface StepProgress {
  percent: number;
  message?: string;
}
