import { cp, mkdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { JOB_FILE, jobDefinitionSchema, RESULTS_DIR, type StepInput } from '@jw/core';
import { ClientError } from './errors.js';

export async function resolveJobsDir(jobsDir: string): Promise<string> {
  const resolved = await realpath(path.resolve(jobsDir)).catch(() => undefined);
  const info = resolved ? await stat(resolved).catch(() => undefined) : undefined;
  if (!resolved || !info?.isDirectory()) {
    throw new ClientError(
      `jobs dir ${jobsDir} does not exist`,
      'give --jobs-dir the folder the worker reads jobs from (its --jobs-dir)',
    );
  }
  return resolved;
}

export interface PrepareOptions {
  jobsDir: string;
  id: string;
  /** A local job dir: copied to `{jobsDir}/{id}`, or used in place when it is that already. */
  dir?: string;
  /** Steps of a `job.json` written for the job. */
  steps?: StepInput[];
  env?: Record<string, string>;
  timeoutSeconds?: number;
}

export interface PreparedJob {
  jobDir: string;
  /** Whether the request must carry env and time-out itself (they are not in a job.json we wrote). */
  requestCarriesSettings: boolean;
}

async function exists(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined)) !== undefined;
}

function taken(id: string, jobsDir: string): ClientError {
  return new ClientError(
    `job dir ${path.join(jobsDir, id)} exists already`,
    'choose another --id, or leave it out to get a fresh one',
  );
}

/** Puts the job on the shared drive (SPEC 1): a copy of a local dir, or a job.json of steps. */
export async function prepareJob(options: PrepareOptions): Promise<PreparedJob> {
  const jobsDir = await resolveJobsDir(options.jobsDir);
  const jobDir = path.join(jobsDir, options.id);
  if (options.steps) {
    if (options.steps.length === 0) throw new ClientError('--steps needs at least one command');
    const definition = {
      steps: options.steps,
      ...(options.env ? { env: options.env } : {}),
      ...(options.timeoutSeconds === undefined ? {} : { timeoutSeconds: options.timeoutSeconds }),
    };
    const checked = jobDefinitionSchema.safeParse(definition);
    if (!checked.success) {
      throw new ClientError(
        `the steps are not a valid job: ${checked.error.issues.map((i) => i.message).join('; ')}`,
      );
    }
    try {
      await mkdir(jobDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw taken(options.id, jobsDir);
      throw error;
    }
    await writeFile(path.join(jobDir, JOB_FILE), `${JSON.stringify(definition, null, 2)}\n`);
    return { jobDir, requestCarriesSettings: false };
  }
  if (!options.dir) throw new ClientError('give a job dir or --steps');
  const source = await realpath(path.resolve(options.dir)).catch(() => undefined);
  if (!source || !(await stat(source)).isDirectory()) {
    throw new ClientError(`job dir ${options.dir} does not exist`, 'give a folder with a job.json');
  }
  if (source === jobDir) return { jobDir, requestCarriesSettings: true };
  if (!(await exists(path.join(source, JOB_FILE)))) {
    throw new ClientError(
      `${options.dir} has no ${JOB_FILE}`,
      'a job dir holds a job.json with its steps; or use --steps',
    );
  }
  if (await exists(jobDir)) throw taken(options.id, jobsDir);
  const skip = path.join(source, RESULTS_DIR);
  try {
    // Links stay links (SPEC 4); the source's own results/ is not part of the job.
    await cp(source, jobDir, {
      recursive: true,
      verbatimSymlinks: true,
      errorOnExist: true,
      force: false,
      filter: (from) => from !== skip,
    });
  } catch (error) {
    await rm(jobDir, { recursive: true, force: true });
    throw new ClientError(
      `cannot copy ${options.dir} to ${jobDir}: ${(error as Error).message}`,
      'is the jobs dir writable from here?',
    );
  }
  return { jobDir, requestCarriesSettings: true };
}
