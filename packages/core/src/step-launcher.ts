import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { processRunning } from './host.js';
import { killGroup } from './process-reaper.js';
import { WorkerWatchdog } from './worker-watchdog.js';

/** How a launched step ended: `[exitCode, signal]`, or `lost` when its minder died first. */
export type LaunchExit = [number | null, NodeJS.Signals | null] | 'lost';

/** A step the launcher started, or why it did not start it. */
export type Launch =
  | { pid: number; exited: Promise<LaunchExit> }
  | { refused: 'cwd' | 'log' | 'launcher-died' };

export interface LaunchRequest {
  cwd: string;
  /** The log's fd in this process: the step opens the same file through /proc (append). */
  logFd: number;
  command: string;
  env: Record<string, string>;
}

/** Shell-quoted, so the launcher reads any string but NUL back as it was. */
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SIGNAL_NAMES = new Map(
  Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

/** A minder found gone is declared lost one check later: its last lines may still be in the pipe. */
const MINDER_CHECK_MS = 1000;

/**
 * The request as the launcher runs it: a minder subshell that enters the cwd, opens the
 * log, forks the step (its own session, only its env, stdin /dev/null, the log on 1 and
 * 2), says its pid, waits for it and says how it ended; the launcher says the minder's
 * pid. Everything the job gives is a quoted literal, so no variable of its env can change what runs. `jobs -l`
 * after `wait` tells a signal from an exit code above 128 (`Done(137)` against
 * `Killed`); `jobs` before each request frees the minders that ended.
 */
function requestScript(id: number, req: LaunchRequest, setsid: string): string {
  const exports = Object.entries(req.env).map(([k, v]) => quote(`${k}=${v}`));
  return [
    `jobs >/dev/null; (cd -- ${quote(req.cwd)} 2>/dev/null || { echo 'x ${id} cwd'; exit 0; }`,
    `command exec 3>>/proc/${process.pid}/fd/${req.logFd} 2>/dev/null || { echo 'x ${id} log'; exit 0; }`,
    `(unset OLDPWD PWD; ${exports.length > 0 ? `export ${exports.join(' ')}; ` : ''}exec ${quote(setsid)} /bin/sh -c ${quote(req.command)}) </dev/null >&3 2>&3 3>&- &`,
    `p=$!; exec 3>&-; echo "s ${id} $p"; wait "$p"; s=$?; jobs -l; echo "e ${id} $s") & echo "m ${id} $!"`,
    '',
  ].join('\n');
}

interface Pending {
  started: (launch: Launch) => void;
  exited?: (exit: LaunchExit) => void;
  pid?: number;
  minder?: number;
  /** The minder was found gone at the last check. */
  gone?: boolean;
}

/** dash prints `Done` / `Done(N)` for an exit and the signal's text otherwise. */
const JOB_LINE = /^\[\d+\]\s*[+-]?\s*(\d+)\s+(\S+)/;

/**
 * Starts plain steps from one long-lived `sh` instead of from node. A fork of the worker
 * copies its page tables and then takes a copy-on-write fault for every page it touches
 * until the child's exec: measured, 12 ms of worker CPU per `sh -c true` step against
 * 2–3 ms for a bare node (issue 14); a fork of dash costs a fraction of it and happens
 * in another process. Used where /bin/sh is dash (whose `jobs -l` after `wait` tells a
 * signal from an exit code) and `setsid` is installed; elsewhere steps start from node.
 */
export class StepLauncher {
  static #shared: StepLauncher | undefined;
  static #asked = 0;
  static #setsid: string | null | undefined;

  readonly #child: ChildProcess;
  readonly #input: Writable;
  readonly #output: Readable;
  readonly #pending = new Map<number, Pending>();
  readonly #doneByPid = new Map<number, boolean>();
  /** Requests told "not started" when the launcher died: a late start of one is killed. */
  readonly #abandoned = new Set<number>();
  #next = 0;
  #alive = true;
  #dead!: () => void;
  /** Resolves once the launcher process is gone. */
  readonly died = new Promise<void>((resolve) => {
    this.#dead = resolve;
  });
  #rest = '';
  #timer: NodeJS.Timeout | undefined;

  private constructor() {
    this.#child = spawn('/bin/sh', ['-s'], {
      // Its own group (a ^C to the worker's group leaves it); no env of the worker's.
      detached: true,
      env: {},
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.#input = this.#child.stdin!;
    this.#output = this.#child.stdout!;
    this.#child.on('exit', () => this.#died());
    this.#child.on('error', () => this.#died());
    this.#input.on('error', () => this.#died());
    this.#output.setEncoding('utf8');
    this.#output.on('data', (text: string) => this.#read(text));
    // If the worker dies, the watchdog kills this group first: a step forked but not yet
    // exec'd has no token in its environ yet, and is still in it.
    if (this.#child.pid !== undefined) WorkerWatchdog.get().watch(this.#child.pid);
    this.#child.unref();
    (this.#input as unknown as { unref?: () => void }).unref?.();
    this.#hold(false);
  }

  /**
   * The launcher of this process, or undefined where steps start from node: on a shell
   * other than dash, without `setsid`, and for the first step a process runs (a one-shot
   * worker's only step does not wait for a launcher to start).
   */
  static get(): StepLauncher | undefined {
    const shared = StepLauncher.#shared;
    if (shared?.alive) return shared;
    if (StepLauncher.#asked++ === 0 || !StepLauncher.supported()) return undefined;
    StepLauncher.#shared = new StepLauncher();
    return StepLauncher.#shared;
  }

  /** Where the launcher can run at all (dash as /bin/sh, `setsid` installed). */
  static supported(): boolean {
    if (StepLauncher.#setsid === undefined) {
      let dash = false;
      try {
        dash = /(^|\/)dash$/.test(realpathSync('/bin/sh'));
      } catch {}
      StepLauncher.#setsid = dash
        ? (['/usr/bin/setsid', '/bin/setsid'].find((p) => existsSync(p)) ?? null)
        : null;
    }
    return StepLauncher.#setsid !== null;
  }

  /** Whether the launcher can run this request as the job gave it (a name the shell can export). */
  static accepts(req: LaunchRequest): boolean {
    const nul = (s: string) => s.includes('\0');
    if (nul(req.cwd) || nul(req.command)) return false;
    return Object.entries(req.env).every(([k, v]) => NAME.test(k) && !nul(v));
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
    const started = new Promise<Launch>((resolve) => {
      this.#pending.set(id, { started: resolve });
    });
    this.#hold(true);
    this.#input.write(requestScript(id, req, StepLauncher.#setsid!));
    return started;
  }

  #read(text: string): void {
    const lines = (this.#rest + text).split('\n');
    this.#rest = lines.pop()!;
    for (const line of lines) this.#line(line);
  }

  #line(line: string): void {
    const job = JOB_LINE.exec(line);
    if (job) {
      this.#doneByPid.set(Number(job[1]), job[2]!.startsWith('Done'));
      return;
    }
    const [kind, idText, a] = line.split(' ');
    const id = Number(idText);
    const pending = this.#pending.get(id);
    if (!pending) {
      if (kind === 's' && this.#abandoned.delete(id)) killGroup(Number(a), 'SIGKILL');
      return;
    }
    if (kind === 'm') {
      pending.minder = Number(a);
    } else if (kind === 's') {
      pending.pid = Number(a);
      const exited = new Promise<LaunchExit>((resolve) => {
        pending.exited = resolve;
      });
      pending.started({ pid: pending.pid, exited });
      this.#check();
    } else if (kind === 'x') {
      this.#end(id);
      pending.started({ refused: a === 'cwd' ? 'cwd' : 'log' });
    } else if (kind === 'e') {
      const status = Number(a);
      const done = this.#doneByPid.get(pending.pid!) ?? true;
      this.#doneByPid.delete(pending.pid!);
      this.#end(id);
      pending.exited?.(
        status > 128 && !done ? [null, SIGNAL_NAMES.get(status - 128) ?? null] : [status, null],
      );
    }
  }

  #end(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) {
      this.#hold(false);
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /**
   * While steps run, their minders are checked each second: a step that killed its
   * minder (`kill -9 $PPID`) would otherwise leave its end unsaid and the job waiting.
   */
  #check(): void {
    this.#timer ??= setInterval(() => {
      for (const [id, p] of this.#pending) {
        if (p.minder === undefined || processRunning(p.minder)) continue;
        if (!p.gone) {
          p.gone = true;
          continue;
        }
        this.#end(id);
        p.exited?.('lost');
      }
    }, MINDER_CHECK_MS);
    this.#timer.unref();
  }

  /** The pipe keeps the worker's loop alive only while steps are out. */
  #hold(on: boolean): void {
    const handle = this.#output as unknown as { ref?: () => void; unref?: () => void };
    if (on) handle.ref?.();
    else handle.unref?.();
  }

  /**
   * The launcher is gone (killed from outside). A request it had not answered may or may
   * not have been forked, so it is not started again: it ends as not started. Steps
   * already running keep their minders, which still report.
   */
  #died(): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#dead();
    if (this.#child.pid !== undefined) WorkerWatchdog.get().forget(this.#child.pid);
    for (const [id, p] of this.#pending) {
      if (p.pid !== undefined) continue;
      this.#end(id);
      this.#abandoned.add(id);
      p.started({ refused: 'launcher-died' });
    }
  }
}
