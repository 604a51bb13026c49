import { type WriteStream, writev } from 'node:fs';
import { type FileHandle, open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { SecretMasker } from './mask.js';
import { NO_FOLLOW, refuseIfLink } from './results-dir.js';

const writevFd = promisify(writev);

export function stepLogName(index: number): string {
  return `step_${index}.log`;
}

/**
 * The log of one step, `results/step_N.log`, created (truncated) before the step
 * starts. A shell step gets the file descriptor itself as its stdout and stderr,
 * so the kernel interleaves both streams as produced and the worker holds none of
 * the output in memory; the file stays open as long as any process of the step
 * holds it, however early one stream closes.
 */
export class StepLog {
  readonly file: string;
  readonly #handle: FileHandle;

  private constructor(file: string, handle: FileHandle) {
    this.file = file;
    this.#handle = handle;
  }

  /** Throws BAD_JOB when a link stands in the log's place: it is never written through. */
  static async create(resultsDir: string, index: number): Promise<StepLog> {
    const file = path.join(resultsDir, stepLogName(index));
    const handle = await open(file, NO_FOLLOW.write, 0o666).catch((error) =>
      refuseIfLink(file, stepLogName(index), error),
    );
    return new StepLog(file, handle);
  }

  get fd(): number {
    return this.#handle.fd;
  }

  /** A stream onto the same file, for in-process handlers (`uses` steps) and worker notes. */
  async stream(): Promise<WriteStream> {
    const handle = await open(this.file, NO_FOLLOW.append).catch((error) =>
      refuseIfLink(this.file, path.basename(this.file), error),
    );
    return handle.createWriteStream();
  }

  /**
   * The log of a handler step: with secrets, what the handler writes passes a
   * SecretMasker first (a value split across writes too). `close()` ends it and resolves
   * once everything is in the file.
   */
  async handlerStream(
    secrets: readonly string[],
  ): Promise<{ stream: Writable; close(): Promise<void> }> {
    const file = await this.stream();
    // A late write of a handler that ignored its abort must not take the worker down.
    file.on('error', () => {});
    if (secrets.length === 0)
      return { stream: file, close: () => new Promise<void>((resolve) => file.end(resolve)) };
    const masker = new SecretMasker(secrets);
    masker.on('error', () => {});
    masker.pipe(file);
    return {
      stream: masker,
      async close() {
        masker.end();
        await finished(file).catch(() => {});
      },
    };
  }

  /**
   * For a step with secrets: its output passes a SecretMasker on its way into the file,
   * with the pipe's backpressure bounding memory. `end(graceMs)` waits for the output to
   * end (every writer gone), at most `graceMs`, then flushes what the masker holds back.
   */
  maskedFrom(
    source: Readable,
    secrets: readonly string[],
  ): { end(graceMs: number): Promise<void> } {
    const sink = new MaskedFileSink(this.fd, new SecretMasker(secrets));
    source.pipe(sink);
    // A log write that fails is the step log's loss only, as with the direct fd path.
    const done = finished(sink).catch(() => {});
    return {
      async end(graceMs) {
        const timer = setTimeout(() => {
          source.unpipe(sink);
          source.destroy();
          sink.end();
        }, graceMs);
        await done;
        clearTimeout(timer);
      },
    };
  }

  /** The last bytes of the log, to tell which limit a failed step hit. */
  async tail(bytes = 8192): Promise<string> {
    const handle = await open(this.file, NO_FOLLOW.read).catch(() => undefined);
    if (!handle) return '';
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, bytes);
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, size - length);
      return buf.toString('utf8');
    } catch {
      return '';
    } finally {
      await handle.close();
    }
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => {});
  }
}

/**
 * Masks and writes into the log's fd. Chunks that arrive while a write is in flight are
 * masked and written together (`_writev`): one scan and one write per batch, which is
 * what keeps masking close to the cost of the direct path.
 */
class MaskedFileSink extends Writable {
  readonly #fd: number;
  readonly #masker: SecretMasker;

  constructor(fd: number, masker: SecretMasker) {
    super({ highWaterMark: 1 << 20 });
    this.#fd = fd;
    this.#masker = masker;
  }

  override _writev(chunks: { chunk: Buffer }[], done: (error?: Error | null) => void): void {
    // Chunk by chunk (the masker carries a split secret over), then one writev: no copies.
    const out = chunks.map((c) => this.#masker.maskChunk(c.chunk)).filter((b) => b.length > 0);
    writeAll(this.#fd, out).then(() => done(), done);
  }

  override _final(done: (error?: Error | null) => void): void {
    writeAll(this.#fd, [this.#masker.takeHeld()]).then(() => done(), done);
  }
}

async function writeAll(fd: number, buffers: Buffer[]): Promise<void> {
  let rest = buffers.filter((b) => b.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await writevFd(fd, rest);
    // A short write: drop what went out, keep the rest of a partly written buffer.
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) {
      bytesWritten -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)];
  }
}

/**
 * Step logs of an earlier attempt are replaced, not appended to (SPEC 4). `found`: their
 * names, when results/ was just listed (it is not listed again).
 */
export async function removeStepLogs(resultsDir: string, found?: readonly string[]): Promise<void> {
  const names = found ?? (await readdir(resultsDir).catch(() => [] as string[]));
  await Promise.all(
    names
      .filter((n) => /^step_\d+\.log$/.test(n))
      .map((n) => unlink(path.join(resultsDir, n)).catch(() => {})),
  );
}
