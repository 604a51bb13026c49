import type { StatusReport } from './status-words.js';

/** Answers that say "try again later": the backend is busy, restarting or slow. */
const RETRYABLE_STATUS = new Set([408, 425, 429]);

/** Bodies above this are not the protocol's small JSON objects; reading stops there. */
const MAX_BODY_BYTES = 1024 * 1024;

/** A call to the backend that did not get a 2xx answer. */
export class AgentCallError extends Error {
  constructor(
    message: string,
    /** The HTTP status, when the backend answered at all. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AgentCallError';
  }

  /** 5xx, 408, 425, 429 and no answer at all: the backend may take it later. */
  get transient(): boolean {
    return this.status === undefined || this.status >= 500 || RETRYABLE_STATUS.has(this.status);
  }
}

export interface AgentClientOptions {
  /** Base URL of the backend, e.g. `http://localhost:8000`. */
  server: string;
  /** Sent as `Authorization: Bearer …` when set. */
  token?: string | undefined;
  /** Time limit of one call, connect to last byte. */
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  text: string;
}

/** The four calls of the agent protocol (SPEC 8), each with a time limit. */
export class AgentClient {
  private readonly base: string;

  constructor(private readonly options: AgentClientOptions) {
    this.base = options.server.replace(/\/+$/, '');
  }

  /** `POST /api/agent/next-job`: 204 gives undefined, 200 the raw body (the caller validates it). */
  async nextJob(workerId: string, signal?: AbortSignal): Promise<string | undefined> {
    const answer = await this.call('POST', '/api/agent/next-job', { worker_id: workerId }, signal);
    return answer.status === 204 ? undefined : answer.text;
  }

  async postStatus(report: StatusReport, signal?: AbortSignal): Promise<void> {
    await this.call('POST', '/api/agent/job-status', report, signal);
  }

  async heartbeat(
    workerId: string,
    info: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.call('POST', '/api/agent/heartbeat', { worker_id: workerId, info }, signal);
  }

  /** `GET /status/{job_id}`: the backend's word for the job, undefined for an unknown job (404). */
  async jobStatus(jobId: string, signal?: AbortSignal): Promise<string | undefined> {
    let answer: HttpAnswer;
    try {
      answer = await this.call('GET', `/status/${encodeURIComponent(jobId)}`, undefined, signal);
    } catch (error) {
      if (error instanceof AgentCallError && error.status === 404) return undefined;
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(answer.text);
    } catch {
      throw new AgentCallError(`status of ${jobId}: answer is not JSON`, answer.status);
    }
    const status = (value as { status?: unknown } | null)?.status;
    if (typeof status !== 'string') {
      throw new AgentCallError(`status of ${jobId}: answer has no "status"`, answer.status);
    }
    return status;
  }

  /** One request; resolves on 2xx, throws AgentCallError on anything else. */
  async call(
    method: string,
    route: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<HttpAnswer> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let response: Response;
    try {
      response = await fetch(`${this.base}${route}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      throw new AgentCallError(
        `${method} ${route}: ${describeFetchError(error, timeout)}`,
        undefined,
        {
          cause: error,
        },
      );
    }
    let text: string;
    try {
      text = await readBounded(response);
    } catch (error) {
      throw new AgentCallError(
        `${method} ${route}: reading the answer failed: ${describeFetchError(error, timeout)}`,
        undefined,
        { cause: error },
      );
    }
    if (response.status < 200 || response.status > 299) {
      throw new AgentCallError(
        `${method} ${route}: HTTP ${response.status}${text ? ` ${text.slice(0, 200)}` : ''}`,
        response.status,
      );
    }
    return { status: response.status, text };
  }
}

function describeFetchError(error: unknown, timeout: AbortSignal): string {
  if (timeout.aborted) return 'timed out';
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

async function readBounded(response: Response): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) {
      // Cancelling frees the socket instead of draining an endless body.
      await response.body.cancel().catch(() => {});
      throw new Error(`answer is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
