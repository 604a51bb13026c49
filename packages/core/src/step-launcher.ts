import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { WorkerWatchdog } from './worker-watchdog.js';

/** How a launched step ended: `[exitCode, signal]`, or `lost` when the launcher died first. */
export type LaunchExit = [number | null, NodeJS.Signals | null] | 'lost';

/** A step the launcher started, or why it did not start it. */
export type Launch =
  | { pid: number; exited: Promise<LaunchExit> }
  | { refused: 'cwd' | 'log' | 'spawn' | 'launcher-died' };

export interface LaunchRequest {
  cwd: string;
  /** The log's fd in this process: the launcher opens the same file through /proc (append). */
  logFd: number;
  command: string;
  env: Record<string, string>;
}

/** A launcher that has not said `ready` by then is given up on: steps start from node. */
const BOOT_TIMEOUT_MS = 30_000;

/** A launcher without a step for this long is let go (its memory with it); the next step starts another. */
const IDLE_MS = 60_000;

/**
 * The launcher: a node process with nothing loaded, reading one JSON request per line.
 * It opens the step's log through /proc/<worker>/fd/<n> (the file the worker opened with
 * O_NOFOLLOW, wherever the path now points), spawns `sh -c` in a session of its own
 * (libuv's setsid between fork and exec) with only the step's env and stdin /dev/null,
 * and says `s id pid`, then `e id code signal`; `x id why` when it could not start it.
 */
const LAUNCHER = `'use strict';
const { spawn } = require('node:child_process');
const { closeSync, openSync } = require('node:fs');
const worker = process.argv[1];
const say = (line) => process.stdout.write(line + '\\n');
process.stdout.on('error', () => process.exit(0));
const start = ({ id, cwd, logFd, command, env }) => {
  let fd;
  try { fd = openSync('/proc/' + worker + '/fd/' + logFd, 'a'); } catch { return say('x ' + id + ' log'); }
  let child;
  try {
    child = spawn('/bin/sh', ['-c', command], { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
  } catch { return say('x ' + id + ' spawn'); } finally { closeSync(fd); }
  if (child.pid === undefined) {
    child.on('error', (e) => say('x ' + id + (/^(ENOENT|ENOTDIR|EACCES)$/.test(e.code) ? ' cwd' : ' spawn')));
    return;
  }
  child.on('exit', (code, signal) => say('e ' + id + ' ' + code + ' ' + signal));
  say('s ' + id + ' ' + child.pid);
};
let rest = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (text) => {
  const lines = (rest + text).split('\\n');
  rest = lines.pop();
  for (const line of lines) if (line) start(JSON.parse(line));
});
process.stdin.on('end', () => process.exit(0));
say('ready');
`;

interface Pending {
  started: (launch: Launch) => void;
  exited?: (exit: LaunchExit) => void;
  pid?: number;
}

/**
 * Starts plain steps from one small node process instead of from the worker. A fork of
 * the worker copies its page tables and takes a copy-on-write fault for every page it
 * touches until the child's exec: 12 ms of worker CPU per `sh -c true` step on the
 * project's VM. The launcher holds almost nothing, so its fork is cheap, and it happens
 * in another process (issue 14). Wanted by a worker that takes more than one job
 * (`want()`), started with its first plain step and let go after a minute without one;
 * a one-shot worker and `runJob` alone start their steps from node.
 */
export class StepLauncher {
  static #shared: StepLauncher | undefined;
  static #wanted = false;
  /** A launcher died before it was ready: node cannot start one here, so none is tried again. */
  static #broken = false;
  /** How long an idle launcher is kept (tests shorten it). */
  static idleMs = IDLE_MS;

  readonly #child: ChildProcess;
  readonly #input: Writable;
  readonly #output: Readable;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #alive = true;
  #gone = false;
  #ready = false;
  #idle: NodeJS.Timeout | undefined;
  #dead!: () => void;
  /** Resolves once the launcher process is gone. */
  readonly died = new Promise<void>((resolve) => {
    this.#dead = resolve;
  });
  #up!: (ok: boolean) => void;
  /** Resolves true once the launcher takes requests, false if it died or never said so. */
  readonly ready = new Promise<boolean>((resolve) => {
    this.#up = resolve;
  });
  #rest = '';

  private constructor() {
    this.#child = spawn(process.execPath, ['-e', LAUNCHER, String(process.pid)], {
      // Its own group (a ^C to the worker's group leaves it); no env of the worker's
      // (NODE_OPTIONS among it).
      detached: true,
      env: {},
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.#input = this.#child.stdin!;
    this.#output = this.#child.stdout!;
    // 'close', not 'exit': every line it wrote before it died is read first.
    this.#child.on('close', () => this.#died());
    this.#child.on('error', () => this.#died());
    this.#input.on('error', () => this.#died());
    this.#output.setEncoding('utf8');
    this.#output.on('data', (text: string) => this.#read(text));
    // If the worker dies, the watchdog kills this group first: a step forked but not yet
    // in its own session is still in it.
    if (this.#child.pid !== undefined) WorkerWatchdog.get().watch(this.#child.pid);
    const boot = setTimeout(() => this.#child.kill('SIGKILL'), BOOT_TIMEOUT_MS);
    boot.unref();
    void this.ready.then(() => clearTimeout(boot));
    this.#child.unref();
    (this.#input as unknown as { unref?: () => void }).unref?.();
    // Held until it says ready: a worker with nothing else on its loop (an embedded one
    // on the memory transport) would otherwise exit while its first step waits for it.
    this.#hold(true);
  }

  /** Plain steps of this process start from a launcher from now on: it will run more than one job. */
  static want(): void {
    StepLauncher.#wanted = true;
  }

  /**
   * The launcher of this process once it takes requests, started (or started again) when
   * there is none; undefined where steps start from node: none is wanted, or none can run.
   */
  static async get(): Promise<StepLauncher | undefined> {
    if (!StepLauncher.#wanted || StepLauncher.#broken || !StepLauncher.supported())
      return undefined;
    if (!StepLauncher.#shared?.alive) StepLauncher.#shared = new StepLauncher();
    const current = StepLauncher.#shared;
    return (await current.ready) && current.alive ? current : undefined;
  }

  /** Where the launcher can run at all: it opens logs through /proc. */
  static supported(): boolean {
    return existsSync('/proc/self/fd');
  }

  /** Whether the launcher can run this request as the job gave it (node refuses a NUL). */
  static accepts(req: LaunchRequest): boolean {
    const nul = (s: string) => s.includes('\0');
    if (nul(req.cwd) || nul(req.command)) return false;
    return Object.entries(req.env).every(
      ([k, v]) => k !== '' && !k.includes('=') && !nul(k) && !nul(v),
    );
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** The launcher's pid (tests). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Starts the step; resolves once it runs (with its pid) or could not start. */
  launch(req: LaunchRequest): Promise<Launch> {
    if (!this.#alive) return Promise.resolve({ refused: 'launcher-died' });
    const id = this.#next++;
    clearTimeout(this.#idle);
    const started = new Promise<Launch>((resolve) => {
      this.#pending.set(id, { started: resolve });
    });
    this.#hold(true);
    this.#input.write(`${JSON.stringify({ id, ...req })}\n`);
    return started;
  }

  #read(text: string): void {
    const lines = (this.#rest + text).split('\n');
    this.#rest = lines.pop()!;
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    if (line === 'ready') {
      this.#ready = true;
      this.#up(true);
      if (this.#pending.size === 0) this.#settle();
      return;
    }
    const [kind, idText, a, b] = line.split(' ');
    const pending = this.#pending.get(Number(idText));
    if (!pending) return;
    if (kind === 's') {
      pending.pid = Number(a);
      const exited = new Promise<LaunchExit>((resolve) => {
        pending.exited = resolve;
      });
      pending.started({ pid: pending.pid, exited });
    } else if (kind === 'x') {
      this.#end(Number(idText));
      pending.started({ refused: a === 'cwd' || a === 'log' ? a : 'spawn' });
    } else if (kind === 'e') {
      this.#end(Number(idText));
      pending.exited?.([
        a === 'null' ? null : Number(a),
        b === 'null' ? null : (b as NodeJS.Signals),
      ]);
    }
  }

  #end(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#settle();
  }

  /**
   * No step is out: the pipe no longer keeps the worker alive, and the launcher is let go
   * if none comes for a while. It is taken out of use first, so no request can cross its
   * exit; closing its stdin ends it.
   */
  #settle(): void {
    this.#hold(false);
    clearTimeout(this.#idle);
    if (!this.#alive) return;
    this.#idle = setTimeout(() => {
      if (this.#pending.size > 0) return;
      this.#alive = false;
      this.#input.end();
    }, StepLauncher.idleMs);
    this.#idle.unref();
  }

  /** The pipe keeps the worker's loop alive only while steps are out. */
  #hold(on: boolean): void {
    const handle = this.#output as unknown as { ref?: () => void; unref?: () => void };
    if (on) handle.ref?.();
    else handle.unref?.();
  }

  /**
   * The launcher is gone (killed from outside, or by a step: it is their parent). A request
   * it had not answered ends as not started; a step it had started is `lost`, as its end
   * can no longer be told (the step runner then ends what is left of it).
   */
  #died(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#alive = false;
    clearTimeout(this.#idle);
    if (!this.#ready) StepLauncher.#broken = true;
    this.#up(false);
    this.#dead();
    if (this.#child.pid !== undefined) WorkerWatchdog.get().forget(this.#child.pid);
    for (const [id, p] of this.#pending) {
      this.#end(id);
      if (p.pid === undefined) p.started({ refused: 'launcher-died' });
      else p.exited?.('lost');
    }
  }
}
