import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, JwError } from './errors.js';
import { describeIssues, envValueSchema, stepsSchema } from './job-definition.js';

/** SPEC 2: 1–128 of A-Z a-z 0-9 . _ -, not starting with . or - */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function isValidJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID_PATTERN.test(id);
}

/** W3C trace context `traceparent` (version 00 layout; ids not all zero, version not ff). */
const TRACEPARENT =
  /^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$/;

export function isValidTraceparent(value: unknown): value is string {
  return typeof value === 'string' && TRACEPARENT.test(value);
}

export const requestSchema = z.object({
  id: z
    .string()
    .regex(JOB_ID_PATTERN, 'id must be 1-128 of A-Z a-z 0-9 . _ - and not start with . or -'),
  steps: stepsSchema.optional(),
  env: z
    .record(z.string(), envValueSchema)
    .transform((env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])))
    .optional(),
  timeoutSeconds: z.number().positive().optional(),
  force: z.boolean().optional(),
  // A trace context that cannot be read is dropped, as W3C asks, not a bad request.
  traceparent: z.string().regex(TRACEPARENT).optional().catch(undefined),
  tracestate: z.string().max(512).optional().catch(undefined),
});

export type JobRequest = z.output<typeof requestSchema>;
export type JobRequestInput = z.input<typeof requestSchema>;

/** What a transport hands to core: raw bytes or text as received, or an already-built object. */
export type RequestBody = Uint8Array | string | Record<string, unknown>;

export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;

/** A bad request together with whatever could be read of it, so it can still be answered. */
export class BadRequestError extends JwError {
  constructor(message: string, jobId?: string) {
    super(ErrorCode.BAD_REQUEST, message, jobId === undefined ? {} : { jobId });
    this.name = 'BadRequestError';
  }
}

/**
 * Parses and validates a request (SPEC 2). Throws BadRequestError carrying the id
 * when the id itself is valid, so the transport can still publish a result for it.
 */
export function parseRequest(body: RequestBody, maxBytes = DEFAULT_MAX_REQUEST_BYTES): JobRequest {
  let value: unknown = body;
  let tooBig = false;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
    tooBig = size > maxBytes;
    const text =
      typeof body === 'string'
        ? body
        : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    if (text.trim() === '') throw new BadRequestError('empty request');
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new BadRequestError(`request is not JSON: ${(error as Error).message}`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('request must be a JSON object');
  }
  const rawId = (value as { id?: unknown }).id;
  const knownId = isValidJobId(rawId) ? rawId : undefined;
  if (tooBig) throw new BadRequestError(`request is larger than ${maxBytes} bytes`, knownId);
  const parsed = requestSchema.safeParse(value);
  if (!parsed.success)
    throw new BadRequestError(describeIssues(parsed.error, '(request)'), knownId);
  return parsed.data;
}

/** How long the jobs dir's real path is reused: a link to it that is repointed is seen after this. */
const JOBS_DIR_REUSE_MS = 5_000;
const realJobsDirs = new Map<string, { real: string; at: number }>();

/** The real path of the jobs dir, looked up once per few seconds rather than per job. */
async function realJobsDir(jobsDir: string): Promise<string> {
  const known = realJobsDirs.get(jobsDir);
  if (known && Date.now() - known.at < JOBS_DIR_REUSE_MS) return known.real;
  const real = await realpath(jobsDir).catch((error: NodeJS.ErrnoException) => {
    realJobsDirs.delete(jobsDir);
    throw new JwError(
      ErrorCode.BAD_CONFIG,
      `jobs dir ${jobsDir} is not readable: ${error.code ?? error.message}`,
    );
  });
  realJobsDirs.set(jobsDir, { real, at: Date.now() });
  return real;
}

/**
 * The job dir of a request, checked to stay inside the jobs dir after symlinks are
 * resolved. Returns the real path when the dir exists, else the joined path.
 */
export async function resolveJobDir(
  jobsDir: string,
  id: string,
): Promise<{ path: string; exists: boolean }> {
  if (!isValidJobId(id)) throw new BadRequestError(`invalid job id ${JSON.stringify(id)}`);
  const root = await realJobsDir(jobsDir);
  const joined = path.join(root, id);
  try {
    const real = await realpath(joined);
    if (real !== joined && !real.startsWith(root + path.sep)) {
      throw new BadRequestError(`job dir of ${id} resolves outside the jobs dir`, id);
    }
    return { path: real, exists: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // A dangling symlink is not a missing dir: creating the dir would follow it.
    const link = await lstat(joined).catch(() => undefined);
    if (link) throw new BadRequestError(`job dir of ${id} is a dangling link`, id);
    return { path: joined, exists: false };
  }
}
