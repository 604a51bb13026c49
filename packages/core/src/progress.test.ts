import { appendFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, waitFor } from '@jw/testing/fs';
import { describe, expect, it } from 'vitest';
import {
  ProgressFile,
  type ProgressReport,
  ProgressThrottle,
  parseProgressLine,
} from './progress.js';

const until = (check: () => boolean) => waitFor(check, 20_000);

describe('parseProgressLine', () => {
  it('reads a percentage with a message, JSON, a bare message, and clamps', () => {
    expect(parseProgressLine('40 compiling')).toEqual({ percent: 40, message: 'compiling' });
    expect(parseProgressLine('12.5% half way there')).toEqual({
      percent: 12.5,
      message: 'half way there',
    });
    expect(parseProgressLine('75')).toEqual({ percent: 75 });
    expect(parseProgressLine('{"percent":40,"message":"linking"}')).toEqual({
      percent: 40,
      message: 'linking',
    });
    expect(parseProgressLine('{"message":"only words"}')).toEqual({ message: 'only words' });
    expect(parseProgressLine('downloading deps')).toEqual({ message: 'downloading deps' });
    expect(parseProgressLine('250 too far')).toEqual({ percent: 100, message: 'too far' });
    expect(parseProgressLine('   ')).toBeUndefined();
    expect(parseProgressLine('{"percent":"x"}')).toBeUndefined();
  });
});

describe('ProgressThrottle', () => {
  it('sends the first at once, holds later ones, and always sends the last', async () => {
    const sent: number[] = [];
    const throttle = new ProgressThrottle<number>((n) => sent.push(n), 10_000);
    throttle.push(1);
    throttle.push(2);
    throttle.push(3);
    expect(sent).toEqual([1]);
    throttle.flush();
    expect(sent).toEqual([1, 3]);
    throttle.flush();
    expect(sent).toEqual([1, 3]);
  });

  it('sends a held report once the interval has passed', async () => {
    const sent: number[] = [];
    const throttle = new ProgressThrottle<number>((n) => sent.push(n), 50);
    throttle.push(1);
    throttle.push(2);
    await until(() => sent.length === 2);
    expect(sent).toEqual([1, 2]);
  });
});

describe('ProgressFile', () => {
  it('follows appended lines, takes a last line without newline on close, and removes the file', async () => {
    const box = await createSandbox('jw-progress-');
    const dir = box.workspacesDir;
    const reports: ProgressReport[] = [];
    const file = await ProgressFile.create(
      path.join(dir, '.ws.progress'),
      (r) => reports.push(r),
      20,
    );
    expect((await stat(file.file)).mode & 0o777).toBe(0o600);
    await appendFile(file.file, '10 starting\n');
    await until(() => reports.length === 1);
    await appendFile(file.file, '{"percent":50,"message":"half"}\n\n60 par');
    await until(() => reports.length === 2);
    await appendFile(file.file, 'tial');
    await file.close();
    expect(reports).toEqual([
      { percent: 10, message: 'starting' },
      { percent: 50, message: 'half' },
      { percent: 60, message: 'partial' },
    ]);
    await expect(stat(file.file)).rejects.toThrow();
    await box.cleanup();
  });
});
