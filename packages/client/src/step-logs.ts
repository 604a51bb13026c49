import { open } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { isFinalStatus, type Manifest, RESULTS_DIR, readManifest } from '@jw/core';
import { sleep } from './channel.js';
import { POLL_MS } from './manifest-events.js';

/** A piece of a step's log, as it was appended to `results/step_N.log`. */
export interface LogChunk {
  step: number;
  name: string;
  chunk: string;
}

export interface FollowLogsOptions {
  /** Keep reading until the job is final (default). False: print what is there and stop. */
  follow?: boolean;
  signal?: AbortSignal;
  /**
   * Manifests to take as this run's. Default: any. A submitted job passes "running, or
   * final once its result came", so an earlier run's logs are not taken for this one's.
   */
  accept?: (manifest: Manifest) => boolean;
  /** Once this settles, one more pass reads what is left, and the logs end. */
  until?: Promise<unknown>;
}

const READ_BYTES = 64 * 1024;

/** Reads a file from `offset` to its current end, in pieces. */
async function* readFrom(file: string, offset: number): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    const buffer = Buffer.alloc(READ_BYTES);
    let position = offset;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield Buffer.from(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

/**
 * The step logs of a job as they are written: follows the manifest's steps in order,
 * tailing each `results/step_N.log` until the manifest says the step ended (the
 * worker closes a step's log before it writes that), then the next. Works for every
 * transport, since the logs are on the shared drive. A new attempt starts over.
 */
export async function* followLogs(
  jobDir: string,
  options: FollowLogsOptions = {},
): AsyncGenerator<LogChunk> {
  const follow = options.follow ?? true;
  let settled = false;
  options.until?.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  let attempt: number | undefined;
  let step = 0;
  let offset = 0;
  let decoder = new StringDecoder('utf8');
  for (;;) {
    const lastPass = settled || !follow;
    const manifest = await readManifest(jobDir);
    if (manifest && (options.accept?.(manifest) ?? true)) {
      if (manifest.attempt !== attempt) {
        attempt = manifest.attempt;
        step = 0;
        offset = 0;
        decoder = new StringDecoder('utf8');
      }
      while (step < manifest.steps.length) {
        const record = manifest.steps[step]!;
        for await (const piece of readFrom(path.join(jobDir, RESULTS_DIR, record.log), offset)) {
          offset += piece.length;
          const chunk = decoder.write(piece);
          if (chunk) yield { step: record.index, name: record.name, chunk };
        }
        if (record.status === 'running') break;
        const rest = decoder.end();
        if (rest) yield { step: record.index, name: record.name, chunk: rest };
        step++;
        offset = 0;
        decoder = new StringDecoder('utf8');
      }
      if (isFinalStatus(manifest.status) && step >= manifest.steps.length) return;
    }
    if (lastPass || options.signal?.aborted) return;
    await sleep(POLL_MS, options.signal);
  }
}
