import { z } from 'zod';
import { type Limits, limitsSchema } from './limits.js';

export const envValueSchema = z.union([z.string(), z.number(), z.boolean()], {
  error: 'expected a string, number or boolean',
});

/** Env values: strings, with numbers and booleans accepted and turned into strings. */
const envNameSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are letters, digits and _');

const envSchema = z
  .record(envNameSchema, envValueSchema)
  .transform((env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])));

const timeoutSchema = z
  .number()
  .positive()
  .max(7 * 24 * 3600);

const cwdSchema = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'), {
    message: 'cwd must be a relative path inside the workspace',
  });

const stepCommon = {
  name: z.string().min(1).max(200).optional(),
  env: envSchema.optional(),
  timeoutSeconds: timeoutSchema.optional(),
  continueOnError: z.boolean().optional(),
};

const runStepSchema = z.object({
  ...stepCommon,
  run: z.string().min(1),
  cwd: cwdSchema.optional(),
  limits: limitsSchema.optional(),
});
const usesStepSchema = z.object({
  ...stepCommon,
  uses: z.string().min(1),
  with: z.record(z.string(), z.unknown()).optional(),
  cwd: cwdSchema.optional(),
});

const STEP_SHAPE = 'expected a command string or an object with "run" or "uses"';

/** An object that says which kind of step it is gets the errors of that kind, not the union's. */
function stepError(issue: z.core.$ZodRawIssue): string {
  const input = issue.input as Record<string, unknown> | undefined;
  const errors = (issue as { errors?: z.core.$ZodIssue[][] }).errors;
  const option =
    input && typeof input === 'object' ? ('run' in input ? 1 : 'uses' in input ? 2 : 0) : 0;
  const detail = option ? errors?.[option] : undefined;
  if (!detail?.length) return STEP_SHAPE;
  return detail
    .map((i) => `${i.path.join('.')}: ${i.message.replace(/^Invalid input: /, '')}`)
    .join('; ');
}

export const stepSchema = z.union([z.string().min(1), runStepSchema, usesStepSchema], {
  error: stepError,
});
export const stepsSchema = z.array(stepSchema).min(1, 'at least one step is needed');

export const artifactsSchema = z.object({
  include: z.array(z.string().min(1)).optional(),
  exclude: z.array(z.string().min(1)).optional(),
});

/** `job.json` (SPEC 3). Unknown fields are ignored. */
export const jobDefinitionSchema = z.object({
  steps: stepsSchema.optional(),
  env: envSchema.optional(),
  timeoutSeconds: timeoutSchema.optional(),
  artifacts: artifactsSchema.optional(),
  /** For every step; a step's own `limits` win. */
  limits: limitsSchema.optional(),
  /** Env names whose values are masked in logs, besides the secret-named ones. */
  secrets: z.array(envNameSchema).optional(),
});

export type StepInput = z.input<typeof stepSchema>;
export type JobDefinitionInput = z.input<typeof jobDefinitionSchema>;
export type JobDefinition = z.output<typeof jobDefinitionSchema>;

/** A step as the runner sees it: one shape for strings, `run` and `uses` steps. */
export interface Step {
  index: number;
  name: string;
  /** Shell command, for `run` steps (and string steps). */
  run?: string;
  /** Handler name, for `uses` steps. */
  uses?: string;
  with?: Record<string, unknown>;
  env: Record<string, string>;
  timeoutMs?: number;
  continueOnError: boolean;
  /** Relative to the workspace. */
  cwd?: string;
  /** The step's own limits, as written (the job's and the worker's are merged in later). */
  limits?: Limits;
}

export function normalizeSteps(steps: z.output<typeof stepsSchema>): Step[] {
  return steps.map((s, index) => {
    if (typeof s === 'string') return { index, name: s, run: s, env: {}, continueOnError: false };
    const base = {
      index,
      env: s.env ?? {},
      continueOnError: s.continueOnError ?? false,
      ...(s.timeoutSeconds === undefined ? {} : { timeoutMs: s.timeoutSeconds * 1000 }),
      ...(s.cwd === undefined ? {} : { cwd: s.cwd }),
    };
    if ('run' in s)
      return {
        ...base,
        name: s.name ?? s.run,
        run: s.run,
        ...(s.limits === undefined ? {} : { limits: s.limits }),
      };
    return { ...base, name: s.name ?? s.uses, uses: s.uses, with: s.with ?? {} };
  });
}

/**
 * zod's issues as `field: what was expected`: never a bare "Invalid input" that names
 * neither. `root` names the whole value (`(request)`, `(job.json)`).
 */
export function describeIssues(error: z.ZodError, root: string): string {
  return error.issues
    .map((i) => `${i.path.join('.') || root}: ${i.message.replace(/^Invalid input: /, '')}`)
    .join('; ');
}

/** The JSON Schema of `job.json`, for editors and controllers. */
export function jobJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(jobDefinitionSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}
