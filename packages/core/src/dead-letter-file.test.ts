import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatBytes, parseByteSize } from './byte-size.js';
import { type DeadLetter, DeadLetterFile } from './dead-letter-file.js';
import { ErrorCode, JwError } from './errors.js';
import type { Logger } from './logger.js';

let box: Sandbox;
let file: string;
beforeEach(async () => {
  box = await createSandbox('jw-dlq-');
  file = path.join(box.root, 'dlq', 'dead.jsonl');
});
afterEach(async () => {
  await box.cleanup();
});

const letter = (payload: DeadLetter['payload'], jobId?: string): DeadLetter => ({
  transport: 'nats',
  workerId: 'w1',
  error: new JwError(ErrorCode.BAD_REQUEST, 'id is missing'),
  jobId,
  delivery: 'JOBS#7',
  payload,
});

async function lines(name = file) {
  const text = await readFile(name, 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

function recordingLogger() {
  const seen: { level: string; msg?: string }[] = [];
  const at =
    (level: string) =>
    (_obj: unknown, msg?: string): void => {
      seen.push({ level, ...(msg === undefined ? {} : { msg }) });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { seen, logger };
}

describe('dead-letter file', () => {
  it('writes one JSON line per dead letter: text as text, other bytes as base64', async () => {
    const dlq = new DeadLetterFile({ path: file });
    await dlq.write(letter('{"steps":[]}'));
    await dlq.write(letter(new Uint8Array([0xff, 0xfe, 0x00, 0x41]), 'job-1'));
    await dlq.write(letter({ id: 'obj' }));
    const [text, binary, object] = await lines();
    expect(text).toMatchObject({
      transport: 'nats',
      workerId: 'w1',
      reason: 'id is missing',
      errorCode: 'BAD_REQUEST',
      delivery: 'JOBS#7',
      payload: '{"steps":[]}',
      payloadBytes: 12,
    });
    expect(Date.parse(text.time)).not.toBeNaN();
    expect(text.jobId).toBeUndefined();
    expect(binary).toMatchObject({ jobId: 'job-1', payloadBase64: '//4AQQ==', payloadBytes: 4 });
    expect(binary.payload).toBeUndefined();
    expect(object.payload).toBe('{"id":"obj"}');
  });

  it('cuts a payload over the limit and says so', async () => {
    const dlq = new DeadLetterFile({ path: file, maxPayloadBytes: 5 });
    await dlq.write(letter('0123456789'));
    expect((await lines())[0]).toMatchObject({
      payload: '01234',
      payloadBytes: 10,
      truncated: true,
    });
  });

  it('rotates by size to PATH.1 … PATH.N and keeps at most N rotated files', async () => {
    const dlq = new DeadLetterFile({ path: file, maxBytes: 400, maxFiles: 2 });
    for (let i = 0; i < 12; i++) await dlq.write(letter(`payload ${i} ${'x'.repeat(100)}`));
    const names = (await readdir(path.dirname(file))).sort();
    expect(names).toEqual(['dead.jsonl', 'dead.jsonl.1', 'dead.jsonl.2']);
    for (const name of names) {
      const size = (await readFile(path.join(path.dirname(file), name))).byteLength;
      expect(size).toBeLessThanOrEqual(400);
    }
    // Newest in the live file, older ones in .1 then .2, none lost in between.
    const order = [...(await lines(`${file}.2`)), ...(await lines(`${file}.1`)), ...(await lines())]
      .map((l) => Number(/payload (\d+)/.exec(l.payload)![1]))
      .filter((n) => n >= 0);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(order.at(-1)).toBe(11);
  });

  it('keeps the files together under the total, dropping the oldest first', async () => {
    const dlq = new DeadLetterFile({
      path: file,
      maxBytes: 300,
      maxFiles: 10,
      maxTotalBytes: 700,
    });
    for (let i = 0; i < 20; i++) await dlq.write(letter('y'.repeat(100)));
    const dir = path.dirname(file);
    const names = await readdir(dir);
    let total = 0;
    for (const name of names) total += (await readFile(path.join(dir, name))).byteLength;
    expect(total).toBeLessThanOrEqual(700);
    expect(names).toContain('dead.jsonl.1');
    expect(names).not.toContain('dead.jsonl.4');
  });

  it('removes rotated files older than the age limit', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    const old = new Date(Date.now() - 3 * 86_400_000);
    for (const n of [1, 2]) {
      await writeFile(`${file}.${n}`, '{}\n');
      await utimes(`${file}.${n}`, old, old);
    }
    await writeFile(`${file}.3`, '{}\n');
    const dlq = new DeadLetterFile({ path: file, maxAgeMs: 86_400_000, maxFiles: 5 });
    await dlq.write(letter('z'));
    // .3 is fresh but numbered as older than expired ones: it goes too.
    expect((await readdir(path.dirname(file))).sort()).toEqual(['dead.jsonl']);
  });

  it('never throws: a file that cannot be written is logged once, then again when it works', async () => {
    // A dir where the file should be fails for root too (a read-only mode would not).
    await mkdir(file, { recursive: true });
    const { seen, logger } = recordingLogger();
    const dlq = new DeadLetterFile({ path: file, logger });
    await dlq.write(letter('a'));
    await dlq.write(letter('b'));
    expect(seen.filter((s) => s.level === 'error')).toHaveLength(1);
    await rm(file, { recursive: true });
    await dlq.write(letter('c'));
    expect((await lines()).map((l) => l.payload)).toEqual(['c']);
    expect(seen.some((s) => s.msg === 'dead-letter file written again')).toBe(true);
  });
});

describe('byte sizes', () => {
  it('reads sizes with binary and decimal units', () => {
    expect(parseByteSize('1024')).toBe(1024);
    expect(parseByteSize('10MiB')).toBe(10 * 1024 * 1024);
    expect(parseByteSize('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('100 MB')).toBe(100_000_000);
    expect(() => parseByteSize('ten')).toThrow(/not a size/);
    expect(() => parseByteSize('5%')).toThrow(/not a size/);
    expect(formatBytes(500 * 1024 * 1024)).toBe('500.0 MiB');
    expect(formatBytes(12)).toBe('12 B');
  });
});
