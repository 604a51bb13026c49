/** What went wrong, in one line, and what to try (`jw` prints `error: {message}` and `hint: {hint}`). */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClientError';
  }
}

/** No result within the wait limit (`jw` exits 124, like `timeout(1)`). */
export class WaitTimeoutError extends ClientError {
  constructor(
    readonly jobId: string,
    readonly waitedMs: number,
    hint?: string,
  ) {
    super(`no result for job ${jobId} within ${Math.round(waitedMs / 1000)} s`, hint);
    this.name = 'WaitTimeoutError';
  }
}

export function isClientError(error: unknown): error is ClientError {
  return error instanceof ClientError;
}

/** The hint for an error from a socket that never connected. */
export function connectionHint(error: unknown, what: string, url: string): string | undefined {
  const code = (error as { code?: unknown })?.code;
  const text = `${String(code ?? '')} ${(error as Error)?.message ?? ''}`;
  if (/ECONNREFUSED|CONNECTION_REFUSED|refused/i.test(text))
    return `is ${what} running at ${url}? wrong --via?`;
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(text))
    return `cannot resolve the host of ${url}: wrong --via?`;
  if (/auth|password|token|not authorized|credentials/i.test(text))
    return `the server refused the credentials in ${redact(url)}`;
  return undefined;
}

/** A URL with its password (or token) replaced, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    else if (u.username && u.protocol.startsWith('nats')) u.username = '***';
    return u.toString();
  } catch {
    return url;
  }
}
