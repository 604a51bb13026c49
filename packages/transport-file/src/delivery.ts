import { rename } from 'node:fs/promises';
import path from 'node:path';
import type { Delivery } from '@jw/core';
import { removeCancel } from './cancels.js';
import { reasonFile } from './dead-letter.js';
import { writeQueueFile } from './queue-files.js';
import type { QueueState } from './queue-state.js';
import { jobIdOf, withFileId } from './request-file.js';
import { LatestWrite, whenAborted } from './scans.js';

/**
 * The delivery of `processing/{taken}`, once `pending/{name}`: the result goes to
 * `results/{id}.json` and the request on to `done/`, `failed/` (with its `.reason`)
 * or back to `pending/`.
 */
export function deliveryOf(q: QueueState, name: string, taken: string, text: string): Delivery {
  const { dirs, context, postponed } = q;
  const processing = path.join(dirs.processing, taken);
  // Another worker's orphan scan may already have moved a finished request on.
  const moveTo = (dir: string) =>
    rename(processing, path.join(dir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  const writeResult = (result: { id: string }) =>
    writeQueueFile(
      path.join(dirs.results, `${result.id}.json`),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  const settled = (id: string | undefined) => {
    q.inFlight.delete(taken);
    q.beat();
    if (id !== undefined && postponed.size > 0)
      void postponed
        .releaseWhenFree(id)
        .catch((error) =>
          context.logger.warn({ err: error }, 'could not give back a postponed request'),
        );
  };
  const progress = new LatestWrite();
  return {
    body: withFileId(text, name),
    raw: text,
    label: name,
    onEvent(event) {
      if (event.state === 'claimed') q.beat();
      return progress.write(() =>
        writeQueueFile(path.join(dirs.progress, `${event.jobId}.json`), JSON.stringify(event)),
      );
    },
    async complete(result) {
      try {
        await writeResult(result);
        await moveTo(dirs.done);
        await removeCancel(dirs, result.id);
      } finally {
        settled(result.id);
      }
    },
    async reject(error, result) {
      try {
        if (result) await writeResult(result);
        await writeQueueFile(
          path.join(dirs.failed, `${name}.reason`),
          reasonFile(error.message, error.code, context.workerId),
        );
        await moveTo(dirs.failed);
        if (result) await removeCancel(dirs, result.id);
      } finally {
        settled(undefined);
      }
    },
    async release(_reason, delayMs) {
      q.inFlight.delete(taken);
      let givenBack = () => {};
      const back = new Promise<void>((resolve) => {
        givenBack = resolve;
      });
      const run = async () => {
        postponed.delete(taken);
        try {
          await moveTo(dirs.pending);
          q.addCandidate(name);
        } finally {
          givenBack();
        }
      };
      if (delayMs <= 0) return run();
      // Kept in processing/ until then, so no worker spins on a job another one holds.
      const id = jobIdOf(text, name);
      postponed.add(taken, name, id, delayMs, run);
      // Behind a job this worker runs itself, the request keeps its slot until it is given
      // back: the worker counts it as work (no idle exit) and takes it again when the job ends.
      if (id !== undefined && context.activeJobs().includes(id))
        await Promise.race([back, whenAborted(context.signal)]);
    },
  };
}
