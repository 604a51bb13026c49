import { type ChildProcess, spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { PROCESS_TOKEN_PREFIX, STEP_TOKEN_VAR } from './process-reaper.js';

/**
 * The watchdog's script (`$1` the token prefix). It reads `+ pgid` and `- pgid` lines on
 * stdin, a pipe whose other end only the worker process holds, and keeps the groups of
 * the steps running. When the read ends (the process is gone, even by SIGKILL), it kills
 * those groups, then every process that carries a token of this process (those that
 * left their group), round after round (a process may fork between a scan and its kill), then
 * the groups again. Removing a group keeps a pgid reused later out of the kill. No fork
 * while it follows: the list is kept with parameter expansion alone.
 */
export const WATCHDOG_SCRIPT = [
  "groups=' '",
  'while read -r op pg; do',
  '  case $op in',
  '    +) groups="$groups$pg " ;;',
  '    -) case $groups in *" $pg "*) groups="${groups%% $pg *} ${groups#* $pg }" ;; esac ;;',
  '  esac',
  'done',
  'for pg in $groups; do kill -KILL "-$pg"; done',
  `i=0; while [ $i -lt 10 ]; do i=$((i+1)); p=$(grep -lz "^${STEP_TOKEN_VAR}=$1" /proc/[0-9]*/environ); `,
  '[ -n "$p" ] || break; for f in $p; do f=${f#/proc/}; kill -KILL ${f%/environ}; done; done',
  'for pg in $groups; do kill -KILL "-$pg"; done',
].join('\n');

/**
 * One long-lived watchdog for the steps a worker starts without a wrapper (no limits, no
 * cgroup, no secrets): it outlives a killed worker and kills what its steps left, so no
 * step outlives its worker. Started before the first such step and again if it died; a
 * step's own wrapper and its forks would cost that step about 1 ms (issue 14).
 */
export class WorkerWatchdog {
  static #shared: WorkerWatchdog | undefined;
  readonly #child: ChildProcess;
  readonly #input: Writable;
  #alive = true;

  private constructor() {
    this.#child = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'jw-watchdog', PROCESS_TOKEN_PREFIX], {
      // Its own group: a signal to the worker's group (a terminal's ^C) does not take it.
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.#input = this.#child.stdin!;
    const gone = () => {
      this.#alive = false;
    };
    this.#child.on('exit', gone);
    this.#child.on('error', gone);
    // A write after it died (EPIPE) is not the worker's fault.
    this.#input.on('error', gone);
    // Neither the watchdog nor its pipe keeps the worker's event loop alive.
    this.#child.unref();
    (this.#input as unknown as { unref?: () => void }).unref?.();
  }

  /** The watchdog of this process, started now if it is not running. */
  static get(): WorkerWatchdog {
    const shared = WorkerWatchdog.#shared;
    if (shared?.alive) return shared;
    WorkerWatchdog.#shared = new WorkerWatchdog();
    return WorkerWatchdog.#shared;
  }

  /** False once it has died (killed by someone): the next step starts another. */
  get alive(): boolean {
    return this.#alive;
  }

  /** The watchdog's pid (tests). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** A step's group, to kill if the worker dies while it runs. */
  watch(pgid: number): void {
    if (this.#alive) this.#input.write(`+ ${pgid}\n`);
  }

  /** The step's group is dead: its pgid may be reused by anything. */
  forget(pgid: number): void {
    if (this.#alive) this.#input.write(`- ${pgid}\n`);
  }
}
