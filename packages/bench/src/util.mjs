import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const repo = fileURLToPath(new URL('../../..', import.meta.url));
export const here = fileURLToPath(new URL('.', import.meta.url));
/** BENCH_APPS points the bench at another build of the apps (e.g. to compare with main). */
export const appsDir = path.resolve(process.env.BENCH_APPS ?? path.join(repo, 'apps'));
export const bin = (app) => path.join(appsDir, app, 'dist/main.cjs');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const MiB = 1024 * 1024;

/** Everything started or created is undone here, last first, also on a failure. */
const cleanups = [];
export function onCleanup(fn) {
  cleanups.push(fn);
}
export async function cleanupAll() {
  while (cleanups.length)
    await cleanups
      .pop()()
      .catch(() => {});
}

export async function tempDir(prefix) {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs each contender `rounds` times, the order rotated every round so that none is
 * always first (cold caches) or last (the others' writeback); `reset` runs outside the
 * timing. Returns the median time of each, in ms, and all samples.
 */
export async function compare(contenders, rounds, { sync = false } = {}) {
  const samples = contenders.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + round) % contenders.length;
      const c = contenders[i];
      await c.before?.();
      if (sync) await run('sync');
      const t = performance.now();
      const measured = await c.run(round);
      samples[i].push(typeof measured === 'number' ? measured : performance.now() - t);
      await c.reset?.();
    }
  }
  return { medians: samples.map(median), samples };
}

/** A child process with its output kept, and a way to wait for a line in it. */
export function spawnChild(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  const waiters = new Set();
  const onData = (chunk) => {
    out += chunk;
    for (const w of waiters) w();
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  exited.then(() => {
    gone = true;
    for (const w of waiters) w();
  });
  const stop = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  onCleanup(stop);
  return {
    child,
    exited,
    stop,
    output: () => out,
    waitFor(pattern, timeoutMs = 60_000) {
      const test = () => (typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`${command}: ${pattern} not seen in ${timeoutMs} ms:\n${out.slice(-2000)}`),
          );
        }, timeoutMs);
        const check = () => {
          if (test()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(out);
          } else if (gone) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`${command} exited before ${pattern}:\n${out.slice(-2000)}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Resident set size of a live process, from /proc. */
export function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

/** A live process's children: `{ pid, command }`. */
export function childrenOf(pid) {
  const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === ''
    ? []
    : text.split(' ').map((p) => ({
        pid: Number(p),
        command: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0],
      }));
}

/**
 * The memory a process's children add (their own, anonymous pages: the file pages of a
 * child node are the worker's own node binary, shared), 0 for any gone meanwhile.
 */
export function childrenPrivateMiB(pid) {
  let kib = 0;
  for (const child of childrenOf(pid)) {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/RssAnon:\s+(\d+)/);
    kib += status ? Number(status[1]) : 0;
  }
  return kib / 1024;
}

/**
 * User + system CPU seconds of a command, read with the shell's `times` (its children's
 * line), so no /usr/bin/time is needed.
 */
export async function cpuSeconds(command, args) {
  const quoted = [command, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const { stdout } = await run('/bin/sh', ['-c', `${quoted} >/dev/null 2>&1; times`]);
  const lines = stdout.trim().split('\n');
  const secs = (t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t);
    return Number(m[1]) * 60 + Number(m[2]);
  };
  const [user, system] = lines.at(-1).trim().split(/\s+/);
  return secs(user) + secs(system);
}

/** The worker's env: the caller's minus settings that would reach the worker unasked. */
export function workerEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(NATS|MQTT|FILE|WORKER|JOB|LOG)_/.test(k)) env[k] = v;
  }
  return { ...env, LOG_FORMAT: 'json', ...extra };
}
