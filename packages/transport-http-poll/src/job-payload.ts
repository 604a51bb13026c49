import { isValidJobId } from '@jw/core';
import { z } from 'zod';

/** A job as the backend hands it out on `POST /api/agent/next-job` (SPEC 8). */
export interface BackendJob {
  jobId: string;
  jobName: string;
  configPath: string | undefined;
  /** The backend's own command line, when it sent one. */
  command: string | undefined;
  env: Record<string, string>;
  /** The backend's `force: true`: re-run a job whose dir already holds a final result. */
  force: boolean;
}

export type ParsedJob =
  /** Not a job at all (not JSON, not an object, no `job_id`): back off and poll again. */
  | { kind: 'garbage'; reason: string }
  /** A job that cannot run; reported `failed` with the reason. */
  | { kind: 'invalid'; jobId: string; reason: string }
  | { kind: 'job'; job: BackendJob };

const nullish = <T extends z.ZodType>(schema: T) =>
  schema.nullish().transform((v) => v ?? undefined);

// Unknown fields (image, volumes, container_name of the old protocol) are ignored.
const payloadSchema = z.object({
  job_name: nullish(z.union([z.string(), z.number()]).transform(String)),
  config_path: nullish(z.string()),
  // A list is an argv, as the old agent handed it to `docker run`.
  command: nullish(z.union([z.string().min(1), z.array(z.string()).min(1)])),
  env: nullish(z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))),
  force: nullish(z.boolean()),
});

/** Reads a next-job answer. Integer ids are taken as their decimal text, as the old agent did. */
export function parseNextJob(text: string): ParsedJob {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'garbage', reason: `answer is not JSON: ${JSON.stringify(text.slice(0, 80))}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'garbage', reason: 'answer is not a JSON object' };
  }
  const rawId = (value as { job_id?: unknown }).job_id;
  const jobId = typeof rawId === 'number' && Number.isSafeInteger(rawId) ? String(rawId) : rawId;
  if (typeof jobId !== 'string' || jobId === '') {
    return { kind: 'garbage', reason: 'answer has no "job_id"' };
  }
  if (!isValidJobId(jobId)) {
    return {
      kind: 'invalid',
      jobId,
      reason: `job_id ${JSON.stringify(jobId)} is not a valid job id (1-128 of A-Z a-z 0-9 . _ -, not starting with . or -)`,
    };
  }
  const parsed = payloadSchema.safeParse(value);
  if (!parsed.success) {
    const reason = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(job)'}: ${i.message}`)
      .join('; ');
    return { kind: 'invalid', jobId, reason: `invalid job payload: ${reason}` };
  }
  const { job_name, config_path, command, env, force } = parsed.data;
  return {
    kind: 'job',
    job: {
      jobId,
      jobName: job_name ?? jobId,
      configPath: config_path,
      command: Array.isArray(command) ? command.map(shellQuote).join(' ') : command,
      env: Object.fromEntries(Object.entries(env ?? {}).map(([k, v]) => [k, String(v)])),
      force: force ?? false,
    },
  };
}

/** `'…'`-quotes a value for a POSIX shell unless it is made only of safe characters. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

const PLACEHOLDERS = ['job_id', 'job_name', 'config_path', 'shared_dir'] as const;

/**
 * Fills `{job_id}`, `{job_name}`, `{config_path}` and `{shared_dir}` with
 * shell-quoted values, so a job name with spaces or quotes stays one argument.
 * Other braces (a `docker --format '{{.ID}}'`) are left alone.
 */
export function expandTemplate(template: string, job: BackendJob, sharedDir: string): string {
  const values: Record<(typeof PLACEHOLDERS)[number], string | undefined> = {
    job_id: job.jobId,
    job_name: job.jobName,
    config_path: job.configPath,
    shared_dir: sharedDir,
  };
  return template.replace(/\{(job_id|job_name|config_path|shared_dir)\}/g, (_, name: string) => {
    const value = values[name as keyof typeof values];
    if (value === undefined)
      throw new Error(`the command template needs {${name}}, which the job lacks`);
    return shellQuote(value);
  });
}

/**
 * The core request of a backend job (SPEC 2): the backend's command, else the
 * agent's template, as the one step; with neither, no steps, so the job dir's
 * `job.json` says what runs. Throws when the template needs a field the job lacks.
 */
export function requestOf(
  job: BackendJob,
  settings: { commandTemplate?: string | undefined; sharedDir: string },
): { id: string; steps?: string[]; env: Record<string, string>; force?: true } {
  const command =
    job.command ??
    (settings.commandTemplate
      ? expandTemplate(settings.commandTemplate, job, settings.sharedDir)
      : undefined);
  const env: Record<string, string> = {
    JW_JOB_NAME: job.jobName,
    JW_SHARED_DIR: settings.sharedDir,
    ...(job.configPath === undefined ? {} : { JW_CONFIG_PATH: job.configPath }),
    ...job.env,
  };
  return {
    id: job.jobId,
    ...(command === undefined ? {} : { steps: [command] }),
    env,
    ...(job.force ? { force: true as const } : {}),
  };
}
