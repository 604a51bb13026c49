import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { spawnProcess } from '@jw/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv } from './helpers.js';

let box: Sandbox;
let hooks: string;
beforeAll(async () => {
  box = await createSandbox('jw-startup-');
  // A module hook that notes every file the binary loads (hooks run on their own thread).
  hooks = path.join(box.root, 'hooks.mjs');
  await writeFile(
    hooks,
    "import { appendFileSync } from 'node:fs';\n" +
      'export async function load(url, context, next) {\n' +
      "  if (url.startsWith('file:')) appendFileSync(process.env.JW_LOADED, `${url}\\n`);\n" +
      '  return next(url, context);\n' +
      '}\n',
  );
});
afterAll(async () => {
  await box.cleanup();
});

/** The files the binary loads for these arguments, and their total size in bytes. */
async function loaded(args: string[]): Promise<{ files: string[]; bytes: number }> {
  const list = path.join(box.root, `loaded-${args.join('_')}.txt`);
  const register = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(pathToFileURL(hooks).href)})`;
  const run = spawnProcess(process.execPath, ['--import', register, BIN, ...args], {
    env: cleanEnv({ JW_LOADED: list }),
    cwd: box.root,
  });
  await run.exited;
  const files = (await readFile(list, 'utf8'))
    .split('\n')
    .filter((u) => u.startsWith('file:') && !u.endsWith('hooks.mjs'))
    .map((u) => new URL(u).pathname);
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  return { files, bytes };
}

describe('start-up', () => {
  it('answers --version and --help without loading the NATS client, core or pino', async () => {
    const version = await loaded(['--version']);
    const help = await loaded(['--help']);
    // A dry run loads the worker half: the measure below would see it.
    const dry = await loaded(['--dry-run', '--log-level', 'silent']);
    for (const light of [version, help]) {
      expect(light.files.every((f) => path.dirname(f) === path.dirname(BIN))).toBe(true);
      expect(light.bytes).toBeLessThan(250_000);
    }
    // The worker half (core, pino) is several times the light one, even minified.
    expect(dry.bytes).toBeGreaterThan(4 * Math.max(version.bytes, help.bytes));
  });
});
