import { rename } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode } from '@jw/core';
import { takenName } from './orphans.js';
import { writeQueueFile } from './queue-files.js';
import type { QueueState } from './queue-state.js';

/** `{name}.reason` beside a request in failed/ (SPEC 9). */
export function reasonFile(error: string, errorCode: string, workerId: string | undefined): string {
  const reason = { error, errorCode, worker: workerId, at: new Date().toISOString() };
  return `${JSON.stringify(reason, null, 2)}\n`;
}

/** Moves what is not a request file to failed/ with a `.reason`, without reading it. */
export async function deadLetterEntry(
  q: QueueState,
  from: string,
  name: string,
  reason: string,
  ino?: number,
): Promise<void> {
  let target = name;
  for (;;) {
    try {
      await rename(from, path.join(q.dirs.failed, target));
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return; // another worker moved it
      if (target === name && ['EEXIST', 'ENOTEMPTY', 'EISDIR', 'ENOTDIR'].includes(code ?? '')) {
        target = takenName(name); // failed/ already holds one of that name, of another type
        continue;
      }
      if (ino !== undefined) q.stuck.set(name, ino);
      q.context.logger.warn(
        { file: name, reason, err: error },
        'bad request file left in pending/',
      );
      return;
    }
  }
  await writeQueueFile(
    path.join(q.dirs.failed, `${target}.reason`),
    reasonFile(`not a request file: ${reason}`, ErrorCode.BAD_REQUEST, q.context.workerId),
  );
  q.context.logger.warn(
    { file: name, reason, failed: target },
    `bad request file ${name}: ${reason}`,
  );
}
