import { setTimeout as wait } from 'node:timers/promises';
import { z } from 'zod';
import { defineHandler } from '../define-handler.js';
import type { HandlerContext } from './types.js';
import { isInsidePath, openWorkspaceFile } from './workspace-file.js';

/** Back-off between tries doubles from `retryDelayMs` up to this. */
const MAX_BACKOFF_MS = 30_000;
/** The longest `Retry-After` honoured: a server asking for more is waited for this long. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** 5xx, and 429 (too many requests): the server may answer otherwise later. */
const isRetryable = (status: number) => status >= 500 || status === 429;

/** A `Retry-After` of delay-seconds or an HTTP date, in ms from now (RFC 9110 10.2.3). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS) : undefined;
}

const schema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
    method: z
      .string()
      .regex(/^[A-Za-z]+$/, 'expected an HTTP method such as GET or POST')
      .transform((m) => m.toUpperCase())
      .default('GET'),
    headers: z.record(z.string(), z.string()).default({}),
    /** A string is sent as it is; an object or array as JSON. */
    body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
    /** Limit of one try, body included. */
    timeoutSeconds: z.number().positive().max(3600).default(30),
    /** More tries after a 5xx or 429 answer, a connection error or a try's time-out. */
    retries: z.number().int().min(0).max(10).default(3),
    retryDelayMs: z.number().int().min(0).max(MAX_BACKOFF_MS).default(500),
    /** Saves the response body here, relative to the step's cwd (then it is an artifact). */
    saveTo: z
      .string()
      .min(1)
      .refine(isInsidePath, 'expected a relative path inside the workspace')
      .optional(),
    /** A final status of 400 or more fails the step. Default true. */
    failOnHttpError: z.boolean().default(true),
  })
  .refine((i) => i.body === undefined || (i.method !== 'GET' && i.method !== 'HEAD'), {
    message: 'GET and HEAD requests have no body',
    path: ['body'],
  });

type Input = z.output<typeof schema>;

/** The URL without its query and credentials, which may hold secrets, for the log. */
function shown(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

function requestInit(input: Input, signal: AbortSignal): RequestInit {
  const headers = new Headers(input.headers);
  let body: string | undefined;
  if (typeof input.body === 'string') body = input.body;
  else if (input.body !== undefined) {
    body = JSON.stringify(input.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  return { method: input.method, headers, signal, ...(body === undefined ? {} : { body }) };
}

/** A failure of the workspace file, not of the network: trying again would not help. */
class SaveError extends Error {}

async function saving<T>(what: Promise<T>): Promise<T> {
  return what.catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    throw new SaveError(`cannot save the body: ${message}`, { cause: error });
  });
}

/** Reads the body to its end, into the file when one is asked for; returns its size. */
async function consume(ctx: HandlerContext, input: Input, response: Response): Promise<number> {
  const file = input.saveTo
    ? await saving(openWorkspaceFile(ctx.workspace, ctx.cwd, input.saveTo))
    : undefined;
  let size = 0;
  try {
    if (!response.body) return 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (file) await saving(file.write(chunk));
    }
    return size;
  } finally {
    await file?.close().catch(() => {});
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') return 'timed out';
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  return error instanceof Error ? error.message : String(error);
}

/**
 * `http.request`: one HTTP request, tried again with exponential back-off after a 5xx or
 * 429 (waiting what its `Retry-After` asks for, when it does), a connection error or a
 * time-out. The status and body size go to the step log and to
 * the manifest's `steps[].output`; the body to `saveTo` when given.
 */
export const httpRequestHandler = defineHandler({
  name: 'http.request',
  schema,
  async run(ctx, input) {
    const target = `${input.method} ${shown(input.url)}`;
    const tries = input.retries + 1;
    for (let attempt = 1; ; attempt++) {
      const last = attempt === tries;
      let delay = Math.min(input.retryDelayMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
      const signal = AbortSignal.any([
        ctx.signal,
        AbortSignal.timeout(input.timeoutSeconds * 1000),
      ]);
      let retryWhy: string;
      try {
        const response = await fetch(input.url, requestInit(input, signal));
        if (!isRetryable(response.status) || last) {
          const size = await consume(ctx, input, response);
          const saved = input.saveTo ? `, saved to ${input.saveTo}` : '';
          ctx.log.write(`${target} -> ${response.status}, ${size} bytes${saved}\n`);
          const output = {
            method: input.method,
            status: response.status,
            size,
            attempts: attempt,
            ...(input.saveTo ? { savedTo: input.saveTo } : {}),
          };
          if (response.status >= 400 && input.failOnHttpError)
            return { exitCode: 1, output, error: `${target} answered ${response.status}` };
          return { output };
        }
        await response.body?.cancel().catch(() => {});
        retryWhy = String(response.status);
        delay = retryAfterMs(response.headers.get('retry-after')) ?? delay;
      } catch (error) {
        if (ctx.signal.aborted || error instanceof SaveError) throw error;
        if (last) throw new Error(`${target} failed after ${attempt} tries: ${reasonOf(error)}`);
        retryWhy = reasonOf(error);
      }
      ctx.log.write(`${target} -> ${retryWhy}, try ${attempt + 1} of ${tries} in ${delay} ms\n`);
      await wait(delay, undefined, { signal: ctx.signal });
    }
  },
});
