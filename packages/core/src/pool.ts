/**
 * Runs `fn` over `items` with at most `limit` in flight. File work goes through
 * libuv's thread pool, so many small operations in flight beat one at a time
 * while the event loop stays free for lease and keepalive timers.
 */
export async function forEachLimit<T>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let failed: unknown;
  let hasFailed = false;
  const lane = async () => {
    for (let next = iterator.next(); !next.done && !hasFailed; next = iterator.next()) {
      try {
        await fn(next.value);
      } catch (error) {
        if (!hasFailed) failed = error;
        hasFailed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  if (hasFailed) throw failed;
}
