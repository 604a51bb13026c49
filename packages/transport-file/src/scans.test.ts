import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LatestWrite } from './scans.js';

let box: Sandbox;
beforeEach(async () => {
  box = await createSandbox();
});
afterEach(() => box.cleanup());

it('writes one at a time, skips states a newer one replaced, and ends on the newest', async () => {
  const file = path.join(box.root, 'progress.json');
  const latest = new LatestWrite();
  const written: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let inFlight = 0;
  const writeOf = (state: string, wait?: Promise<void>) => async () => {
    inFlight++;
    expect(inFlight).toBe(1);
    await wait;
    await writeFile(file, state);
    written.push(state);
    inFlight--;
  };
  const first = latest.write(writeOf('claimed', gate));
  const dropped = latest.write(writeOf('staging'));
  const last = latest.write(writeOf('running'));
  release();
  await Promise.all([first, dropped, last]);
  expect(written).toEqual(['claimed', 'running']);
  expect(await readFile(file, 'utf8')).toBe('running');
  // Idle again: the next write starts at once.
  await latest.write(writeOf('success'));
  expect(written).toEqual(['claimed', 'running', 'success']);
});

it('rejects the callers of a failed write, and goes on with the next one', async () => {
  const latest = new LatestWrite();
  let fail!: (error: Error) => void;
  const failing = latest.write(
    () =>
      new Promise<void>((_resolve, reject) => {
        fail = reject;
      }),
  );
  const waiting = latest.write(async () => {
    throw new Error('second fails too');
  });
  fail(new Error('first fails'));
  await expect(failing).rejects.toThrow('first fails');
  await expect(waiting).rejects.toThrow('second fails too');
  await expect(latest.write(async () => {})).resolves.toBeUndefined();
});
