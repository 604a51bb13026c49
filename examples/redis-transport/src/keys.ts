/** Where the transport reads and writes, all under one prefix (default `jobs`). */
export interface Keys {
  /** Stream of the requests: entries with a `body` field holding the SPEC 2 request. */
  requests: string;
  /** Stream of one job's result messages (SPEC 7), field `body`. */
  result(id: string): string;
  /** Pub/sub channel of one job's progress events. */
  progress(id: string): string;
  /** Pub/sub channel a controller publishes on to cancel one job. */
  cancel(id: string): string;
  cancelPattern: string;
  /** Stream of requests that can never run: `body` (raw), `code`, `reason`, `worker`, `entry`. */
  deadLetter: string;
}

export function keysOf(prefix: string): Keys {
  return {
    requests: `${prefix}:pending`,
    result: (id) => `${prefix}:results:${id}`,
    progress: (id) => `${prefix}:progress:${id}`,
    cancel: (id) => `${prefix}:cancel:${id}`,
    cancelPattern: `${prefix}:cancel:*`,
    deadLetter: `${prefix}:dead`,
  };
}

/** The job id of a cancel channel, or undefined for another channel. */
export function cancelledJobOf(keys: Keys, channel: string): string | undefined {
  const head = keys.cancel('');
  return channel.startsWith(head) ? channel.slice(head.length) : undefined;
}
