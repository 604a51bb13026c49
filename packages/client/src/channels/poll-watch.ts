import type { JobEvent, ResultMessage } from '@jw/core';
import { EventStream, type JobWatch, sleep } from '../channel.js';
import { ClientError } from '../errors.js';
import { watchManifestEvents } from '../manifest-events.js';

/**
 * A watch for channels whose result is polled (the file queue's outbox, the backend's
 * job record): `check` every `everyMs` until it gives the result, with the state events
 * read from the job's manifest meanwhile, and the progress reports `progress` reads (the
 * file queue's `progress/{id}.json`), each once.
 */
export async function pollWatch(
  id: string,
  jobDir: string,
  everyMs: number,
  check: () => Promise<ResultMessage | undefined>,
  progress?: () => Promise<JobEvent | undefined>,
): Promise<JobWatch> {
  const abort = new AbortController();
  const events = new EventStream<JobEvent>();
  const manifestEvents = await watchManifestEvents(jobDir, events, abort.signal);
  let lastReport: string | undefined;
  const readProgress = async () => {
    const event = await progress?.();
    // State changes come from the manifest; here only the reports between them.
    if (!event?.progress) return;
    const key = `${event.attempt}:${event.progress.at}`;
    if (key === lastReport || events.ended) return;
    lastReport = key;
    events.push(event);
  };
  const result = (async (): Promise<ResultMessage> => {
    while (!abort.signal.aborted) {
      const found = await check();
      if (found) return found;
      await readProgress();
      await sleep(everyMs, abort.signal);
    }
    throw new ClientError(`stopped waiting for the result of ${id}`);
  })();
  // Between two reads of the manifest the job may have ended: read it once more.
  let resulted = false;
  const settled = result.then(
    () => {
      resulted = true;
      return manifestEvents.finish();
    },
    () => events.end(),
  );
  return {
    result,
    events,
    async close() {
      if (resulted) await settled;
      abort.abort();
      events.end();
    },
  };
}
