import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type JobEvent, type ResultMessage, writeFileAtomic } from '@jw/core';
import { queueDirs } from '@jw/transport-file';
import { type Channel, EventStream, type JobWatch, sleep } from '../channel.js';
import { ClientError } from '../errors.js';
import { POLL_MS, watchManifestEvents } from '../manifest-events.js';

/** The watched folder (SPEC 9): requests into `pending/`, results from `results/{id}.json`. */
export function fileChannel(queueDir: string): Channel {
  const dirs = queueDirs(queueDir);
  const label = `file:${dirs.root}`;

  const checkQueue = async () => {
    const info = await stat(dirs.root).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new ClientError(
        `queue folder ${dirs.root} does not exist`,
        'start the file worker on it first (file-worker --queue-dir …), or fix --via file:DIR',
      );
    }
  };

  return {
    kind: 'file',
    label,
    async watch(id, jobDir): Promise<JobWatch> {
      await checkQueue();
      const resultFile = path.join(dirs.results, `${id}.json`);
      // An earlier run's result of the same id would answer at once.
      await unlink(resultFile).catch(() => {});
      const abort = new AbortController();
      const events = new EventStream<JobEvent>();
      const manifestEvents = await watchManifestEvents(jobDir, events, abort.signal);
      const result = (async (): Promise<ResultMessage> => {
        while (!abort.signal.aborted) {
          const text = await readFile(resultFile, 'utf8').catch(() => undefined);
          if (text !== undefined) {
            try {
              return JSON.parse(text) as ResultMessage;
            } catch {
              // Written in place by someone else and not complete yet: read again.
            }
          }
          await sleep(POLL_MS, abort.signal);
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
    },
    async send(request) {
      await checkQueue();
      await mkdir(dirs.pending, { recursive: true });
      // Written beside pending/ and renamed in, so a worker never takes half a file.
      const tmp = path.join(dirs.root, `.${request.id}.${process.pid}.tmp`);
      await writeFile(tmp, `${JSON.stringify(request)}\n`);
      await rename(tmp, path.join(dirs.pending, `${request.id}.json`));
    },
    async cancel(id) {
      await checkQueue();
      await mkdir(dirs.cancel, { recursive: true });
      await writeFileAtomic(path.join(dirs.cancel, id), `${new Date().toISOString()}\n`);
      return {
        sent: true,
        detail: `wrote ${path.join(dirs.cancel, id)}; the worker running it removes it when it cancels`,
      };
    },
    async workers() {
      throw new ClientError(
        'the file queue has no worker heartbeats',
        'running jobs show in processing/ and their results/.claim; use an MQTT, NATS or HTTP --via to list workers',
      );
    },
    async close() {},
  };
}
