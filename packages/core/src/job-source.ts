import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, JwError } from './errors.js';
import {
  describeIssues,
  type JobDefinition,
  jobDefinitionSchema,
  normalizeSteps,
  type Step,
} from './job-definition.js';
import type { JobRequest } from './request.js';

export const JOB_FILE = 'job.json';

/** What will run: the request's steps or `job.json`'s, with env and time-out merged (SPEC 2, 3). */
export interface ResolvedJob {
  steps: Step[];
  env: Record<string, string>;
  timeoutMs: number | undefined;
  artifacts: NonNullable<JobDefinition['artifacts']>;
  limits: NonNullable<JobDefinition['limits']>;
  /** Env names masked in logs besides the secret-named ones. */
  secrets: string[];
}

async function readJobFile(jobDir: string, required: boolean): Promise<JobDefinition | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(jobDir, JOB_FILE), 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new JwError(
      ErrorCode.BAD_JOB,
      `${JOB_FILE} is missing or unreadable (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new JwError(ErrorCode.BAD_JOB, `${JOB_FILE} is not JSON: ${(error as Error).message}`);
  }
  const parsed = jobDefinitionSchema.safeParse(value);
  if (!parsed.success) {
    const detail = describeIssues(parsed.error, '(root)');
    throw new JwError(ErrorCode.BAD_JOB, `${JOB_FILE} is not a valid job: ${detail}`);
  }
  return parsed.data;
}

/**
 * Reads `job.json` (required unless the request brings its own steps; when it does,
 * a present `job.json` still gives env, time-out and artifact filters). `mayHaveJobFile`
 * false (a job dir the worker made for a request with steps) skips the read.
 */
export async function resolveJob(
  jobDir: string,
  request: JobRequest,
  defaultTimeoutMs?: number,
  mayHaveJobFile = true,
): Promise<ResolvedJob> {
  // Steps in the request override job.json; a job.json that cannot be read then only loses its extras.
  const definition = !request.steps
    ? await readJobFile(jobDir, true)
    : mayHaveJobFile
      ? await readJobFile(jobDir, false).catch(() => undefined)
      : undefined;
  const steps = request.steps ?? definition?.steps;
  if (!steps) throw new JwError(ErrorCode.BAD_JOB, `${JOB_FILE} has no steps`);
  const seconds = request.timeoutSeconds ?? definition?.timeoutSeconds;
  return {
    steps: normalizeSteps(steps),
    env: { ...definition?.env, ...request.env },
    timeoutMs: seconds === undefined ? defaultTimeoutMs : seconds * 1000,
    artifacts: definition?.artifacts ?? {},
    limits: definition?.limits ?? {},
    secrets: definition?.secrets ?? [],
  };
}
