import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createMemoryTransport,
  createWorker,
  type ResultMessage,
  type WorkerOptions,
} from '@jw/core';
import { badSetting } from './options.js';

export const DRY_RUN_PAYLOAD = 'test-payload.json';

/** A dry run runs again each time, as the seeds' did, unless the payload says `force: false`. */
function forced(body: Buffer): Buffer | Record<string, unknown> {
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    if (value && typeof value === 'object' && !Array.isArray(value))
      return { force: true, ...(value as Record<string, unknown>) };
  } catch {
    // Not JSON: handed on as is, so the result says why.
  }
  return body;
}

/**
 * Runs `./test-payload.json` through the full pipeline with no broker (the seeds'
 * dry-run mode) and returns the result message.
 */
export async function dryRun(
  options: Omit<WorkerOptions, 'transport'>,
  transportName: string,
  cwd = process.cwd(),
): Promise<ResultMessage> {
  const file = path.join(cwd, DRY_RUN_PAYLOAD);
  const body = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw badSetting(`--dry-run needs ${file} (${error.code ?? error.message})`);
  });
  const transport = createMemoryTransport([forced(body)], { name: transportName, ended: true });
  const worker = createWorker({
    ...options,
    transport,
    maxJobs: 1,
    concurrency: 1,
    idleTimeoutMs: 0,
  });
  await worker.run();
  const settled = transport.settlements[0];
  if (settled?.kind === 'complete') return settled.result;
  if (settled?.kind === 'reject') {
    return (
      settled.result ?? {
        id: '',
        status: 'error',
        exitCode: 1,
        manifestFile: null,
        workerId: worker.info.id,
        error: settled.error.message,
        errorCode: settled.error.code,
      }
    );
  }
  return {
    id: '',
    status: 'error',
    exitCode: 1,
    manifestFile: null,
    workerId: worker.info.id,
    error: 'the job was not run (claimed by another worker)',
  };
}
