import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sandbox } from '@jw/testing/fs';
import { type Spawned, spawnProcess } from '@jw/testing/process';

const root = (p: string) => fileURLToPath(new URL(`../../../${p}`, import.meta.url));

export const JW = root('packages/client/dist/main.js');
export const FILE_WORKER = root('apps/file-worker/dist/main.cjs');
export const NATS_WORKER = root('apps/nats-fs-worker/dist/main.cjs');
export const MQTT_WORKER = root('apps/mqtt-fs-worker/dist/main.cjs');
export const HTTP_AGENT = root('apps/http-agent/dist/main.cjs');

/** The runner's env without settings that would change what jw or a worker does. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(JW_|NATS_|MQTT_|FILE_|OPEVA_|AGENT_|WORKER_ID$|JOB_TIMEOUT$)/.test(k)) env[k] = v;
  }
  return { ...env, LOG_FORMAT: 'json', ...extra };
}

/** Runs the built `jw`. */
export function jw(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Spawned {
  return spawnProcess(process.execPath, [JW, ...args], {
    env: cleanEnv(options.env),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
}

/** Runs `jw` to the end. */
export async function jwDone(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const run = jw(args, options);
  const { code } = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

export function startBinary(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  return spawnProcess(process.execPath, [bin, ...args], { env: cleanEnv(env) });
}

/** A step that prints `before`, waits until the test creates `gate`, then prints `after`. */
export function gatedStep(gate: string, before: string, after: string): string {
  return `echo ${before}; while [ ! -e ${gate} ]; do sleep 0.1; done; echo ${after}`;
}

export async function readManifestOf(box: Sandbox, id: string) {
  return JSON.parse(
    await readFile(path.join(box.jobsDir, id, 'results', 'result.json'), 'utf8').catch(
      () => 'null',
    ),
  );
}

/** Stack trace lines: jw must never print one. */
export const STACK = /^\s+at .+\(.+:\d+:\d+\)$/m;
