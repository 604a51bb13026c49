import type {
  Handler,
  HandlerContext,
  HandlerResult,
  HandlerSchema,
  InferInput,
  StandardSchemaIssue,
} from './handlers/types.js';

export interface HandlerDefinition<S extends HandlerSchema> {
  name: string;
  schema: S;
  run(
    ctx: HandlerContext,
    input: InferInput<S>,
  ): Promise<HandlerResult | undefined | void> | HandlerResult | undefined | void;
}

/** A `uses` name: letters, digits and `._:/-`, starting with a letter or digit. */
export const HANDLER_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;

/**
 * Defines a handler for `uses` steps. `schema` checks the step's `with` before the job
 * starts (a failure is a `BAD_JOB`); `run` gets the schema's output, defaults applied.
 *
 * ```ts
 * const greet = defineHandler({
 *   name: 'greet',
 *   schema: z.object({ who: z.string() }),
 *   run: (ctx, { who }) => ctx.log.write(`hello ${who}\n`),
 * });
 * createWorker({ transport, jobsDir, workspacesDir, handlers: [greet] });
 * ```
 */
export function defineHandler<S extends HandlerSchema>(
  definition: HandlerDefinition<S>,
): Handler<InferInput<S>> {
  if (!HANDLER_NAME.test(definition.name))
    throw new TypeError(`handler name "${definition.name}" must match ${HANDLER_NAME}`);
  if (!isHandlerSchema(definition.schema))
    throw new TypeError(
      `handler "${definition.name}": schema must be a Standard Schema or have safeParse()`,
    );
  const { name, schema, run } = definition;
  return Object.freeze({
    name,
    schema: schema as HandlerSchema<InferInput<S>>,
    run: async (ctx: HandlerContext, input: InferInput<S>) => (await run(ctx, input)) ?? undefined,
  });
}

export function isHandlerSchema(value: unknown): value is HandlerSchema {
  if (!value || (typeof value !== 'object' && typeof value !== 'function')) return false;
  const standard = (value as { '~standard'?: { validate?: unknown } })['~standard'];
  if (typeof standard?.validate === 'function') return true;
  return typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

export function isHandler(value: unknown): value is Handler {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Handler).name === 'string' &&
    typeof (value as Handler).run === 'function' &&
    isHandlerSchema((value as Handler).schema)
  );
}

export type Validation<T> = { ok: true; value: T } | { ok: false; message: string };

function issuePath(issue: StandardSchemaIssue): string {
  const keys = (issue.path ?? []).map((k) =>
    typeof k === 'object' && k !== null && 'key' in k ? k.key : k,
  );
  return ['with', ...keys.map(String)].join('.');
}

function describe(issues: ReadonlyArray<StandardSchemaIssue>): string {
  return issues
    .map((i) => `${issuePath(i)}: ${i.message.replace(/^Invalid input: /, '')}`)
    .join('; ');
}

/**
 * Checks a step's `with` against a handler's schema. Standard Schema is preferred when a
 * schema has both (zod 4 does); `safeParse` errors are read for zod-like `issues`.
 */
export async function validateHandlerInput<T>(
  schema: HandlerSchema<T>,
  input: unknown,
): Promise<Validation<T>> {
  try {
    const standard = (schema as { '~standard'?: { validate?: unknown } })['~standard'];
    if (standard && typeof standard.validate === 'function') {
      const result = await (schema as Extract<HandlerSchema<T>, { '~standard': unknown }>)[
        '~standard'
      ].validate(input);
      if (result.issues) return { ok: false, message: describe(result.issues) || 'with: invalid' };
      return { ok: true, value: result.value };
    }
    const result = (schema as Extract<HandlerSchema<T>, { safeParse: unknown }>).safeParse(input);
    if (result.success) return { ok: true, value: result.data };
    const issues = (result.error as { issues?: StandardSchemaIssue[] } | undefined)?.issues;
    if (Array.isArray(issues) && issues.length) return { ok: false, message: describe(issues) };
    const message = result.error instanceof Error ? result.error.message : String(result.error);
    return { ok: false, message: `with: ${message}` };
  } catch (error) {
    // A schema that throws is a fault of the handler, but it still means the input is not accepted.
    return {
      ok: false,
      message: `with: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
