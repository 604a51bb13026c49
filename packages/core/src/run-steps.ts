import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { execa } from 'execa';
import { type CgroupParent, StepCgroup } from './cgroup.js';
import { invokeHandler } from './handlers/invoke.js';
import { findHandler, type RegisteredHandler } from './handlers/registry.js';
import type { Handlers, StepProgress } from './handlers/types.js';
import type { Step } from './job-definition.js';
import { describeLimit, type LimitName, type Limits, limitHit, ulimitScript } from './limits.js';
import type { StepStatus } from './manifest.js';
import { maskText, maskValue } from './mask.js';
import { forkCount, killGroup, newStepToken, reapStep, STEP_TOKEN_VAR } from './process-reaper.js';
import { StepLauncher } from './step-launcher.js';
import type { StepLog } from './step-log.js';
import { GATE_FD, LIMITS_REFUSED_EXIT, wrapperScript } from './step-wrapper.js';
import { WorkerWatchdog } from './worker-watchdog.js';

export type { StepHandler, StepHandlerContext } from './handlers/types.js';

/** Why a running step was stopped from outside. */
export type StopReason = 'timeout' | 'cancel' | 'shutdown' | 'claim-lost';

export interface StepOutcome {
  status: Exclude<StepStatus, 'running' | 'skipped'>;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  error?: string;
  stoppedBy?: StopReason;
  /** What a handler step reported for the manifest (`steps[].output`). */
  output?: Record<string, unknown>;
}

export interface RunStepOptions {
  workspace: string;
  env: Record<string, string>;
  log: StepLog;
  /** Aborted with a StopReason as its reason to stop the step. */
  signal: AbortSignal;
  /** SIGTERM → SIGKILL grace. */
  killGraceMs: number;
  /** The worker's handlers for `uses` steps; the built-ins are always there. */
  handlers?: Handlers;
  /** Progress of a handler step (`ctx.progress`); without it progress only goes to the log. */
  onProgress?: (progress: StepProgress) => void;
  /** Values never to appear in the log or an error text (SPEC 3); none keeps the direct fd path. */
  secrets?: readonly string[];
  /** rlimits of a shell step, already merged and bounded (limits.ts). */
  limits?: Limits;
  /** Run a shell step as this user (`--run-as`). */
  user?: { uid: number; gid: number };
  /** Run each shell step in its own cgroup under this one (`--cgroup-parent`). */
  cgroup?: CgroupParent;
}

function stopReasonOf(signal: AbortSignal): StopReason {
  const reason = signal.reason;
  return reason === 'timeout' || reason === 'shutdown' || reason === 'claim-lost'
    ? reason
    : 'cancel';
}

function stoppedOutcome(
  reason: StopReason,
  started: number,
  exitCode: number | null,
  sig: string | null,
): StepOutcome {
  const status = reason === 'timeout' ? 'timeout' : reason === 'claim-lost' ? 'error' : 'cancelled';
  const error = reason === 'timeout' ? 'step timed out' : `step stopped (${reason})`;
  return {
    status,
    exitCode,
    signal: sig,
    durationMs: Date.now() - started,
    error,
    stoppedBy: reason,
  };
}

/** How long output may keep coming once the step and its processes are gone. */
const OUTPUT_DRAIN_MS = 2000;

/** An outcome for a step that never ran; `why` follows "cannot start the step". */
function notStarted(started: number, why: string): StepOutcome {
  return {
    status: 'error',
    exitCode: null,
    signal: null,
    durationMs: Date.now() - started,
    error: `cannot start the step${why}`,
  };
}

/** Why a step did not start, from its spawn's error code: a missing cwd is named. */
function noCwd(step: Step, code: string): string {
  return code === 'ENOENT' && step.cwd !== undefined
    ? `: its cwd ${step.cwd} is not a directory in the workspace`
    : ` (${code})`;
}

/** The cgroup's limits are not set again as rlimits (`processes` as RLIMIT_NPROC would not bind root). */
function rlimitsBeside(limits: Limits, cgroup: StepCgroup | undefined): Limits {
  if (cgroup?.limits.processes === undefined) return limits;
  const { processes: _, ...rest } = limits;
  return rest;
}

/** Why the launcher did not start a step, as the step's error says it (a cwd: `noCwd`). */
const REFUSED: Partial<Record<string, string>> = {
  log: ': cannot open its log',
  spawn: ': the launcher could not start it',
  'launcher-died': ': its launcher died',
};

/**
 * Runs a shell step in its own process group, and in its own cgroup when the worker has
 * one; nothing it started outlives it (SPEC 3).
 */
async function runShell(
  step: Step,
  options: RunStepOptions,
  started: number,
): Promise<StepOutcome> {
  const cwd = step.cwd ? path.join(options.workspace, step.cwd) : options.workspace;
  const secrets = options.secrets ?? [];
  const masked = secrets.length > 0;
  const limits = options.limits ?? {};
  const token = newStepToken();
  let cgroup: StepCgroup | undefined;
  if (options.cgroup) {
    try {
      cgroup = await StepCgroup.create(options.cgroup, token, limits, options.user);
    } catch (error) {
      return notStarted(started, `: cannot make its cgroup (${(error as Error).message})`);
    }
  }
  // The token is the step's alone: in its env when direct, else an argument of the
  // wrapper, which exports it for the step only (never for its own watchdog).
  const { [STEP_TOKEN_VAR]: _, ...env } = options.env;
  // Both streams get the log's fd: execa accepts a numeric fd at run time, its types do not.
  const fd = options.log.fd as never;
  const rlimits = rlimitsBeside(limits, cgroup);
  // Nothing to set up before the step (no limits, no cgroup, one stream per fd): it runs
  // as `sh -c` itself, its group watched by the worker's watchdog instead of its own.
  const direct = !masked && !cgroup && ulimitScript(rlimits) === '';
  const watchdog = direct ? WorkerWatchdog.get() : undefined;
  const streams = masked ? ['ignore', 'pipe', 'ignore'] : ['ignore', fd, fd];
  // Read before the spawn, so every fork of the step comes after it (process-reaper.ts).
  const forks = forkCount();
  const args = direct
    ? ['-c', step.run ?? '']
    : [
        '-c',
        wrapperScript({ limits: rlimits, merged: masked, gated: cgroup !== undefined }),
        'jw-step',
        step.run ?? '',
        token,
        cgroup?.dir ?? '',
      ];
  const stepEnv = direct ? { ...env, [STEP_TOKEN_VAR]: token } : env;
  // A plain step of a worker that takes more than one job starts from its launcher (no
  // fork of the worker, step-launcher.ts); any other starts from node.
  const request = { cwd, logFd: options.log.fd, command: step.run ?? '', env: stepEnv };
  const launcher =
    direct && !options.user && StepLauncher.accepts(request) ? await StepLauncher.get() : undefined;
  const launched = launcher ? await launcher.launch(request) : undefined;
  if (launched && 'refused' in launched) {
    // A launcher that died with the request unanswered may have started it: its token finds it.
    if (launched.refused === 'launcher-died') await reapStep(token, undefined);
    return notStarted(started, REFUSED[launched.refused] ?? noCwd(step, 'ENOENT'));
  }
  const child = launched
    ? undefined
    : execa('/bin/sh', args, {
        cwd,
        env: stepEnv,
        extendEnv: false,
        // fd 3 (wrapped): the watchdog's lifeline; the worker never writes to it, it only
        // holds it open. fd 4 (with a cgroup): the gate. With secrets, one pipe (stderr joins
        // stdout in the wrapper) passes the masker.
        stdio: [...streams, ...(direct ? [] : ['pipe']), ...(cgroup ? ['pipe'] : [])] as never,
        detached: true,
        reject: false,
        // Nothing is captured: the output goes to the log only.
        buffer: false,
        cleanup: false,
        ...(options.user ? { uid: options.user.uid, gid: options.user.gid } : {}),
      });
  const pid = launched ? launched.pid : child?.pid;
  if (watchdog && pid !== undefined) watchdog.watch(pid);
  const output =
    masked && child?.stdout ? options.log.maskedFrom(child.stdout, secrets) : undefined;
  let stopped: StopReason | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (pid === undefined || stopped) return;
    stopped = stopReasonOf(options.signal);
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), options.killGraceMs);
  };
  if (options.signal.aborted) stop();
  else options.signal.addEventListener('abort', stop, { once: true });
  let outcome: StepOutcome;
  let cgroupHit: LimitName | undefined;
  try {
    // 'exit', not the end of streams: what the step leaves in the background may hold them.
    // Listened to before the gate opens: a stop meanwhile ends the waiting wrapper.
    const exited = child
      ? Promise.race([
          (once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>).catch(
            () => child,
          ),
          child.then((r) => r),
        ])
      : launched!.exited;
    const unmoved =
      child && cgroup && pid !== undefined ? await openGate(child, pid, cgroup) : undefined;
    const spawned = await exited;
    if (spawned === 'lost') {
      // Its launcher was killed (perhaps by the step, whose parent it is): how it ended is
      // unknown, and what is left of it is ended below.
      return {
        status: 'error',
        exitCode: null,
        signal: null,
        durationMs: Date.now() - started,
        error: 'the process that watched the step was killed: its exit status is unknown',
      };
    }
    // A stop that came first killed the waiting wrapper: that is why it could not be moved.
    if (unmoved && !stopped)
      return notStarted(started, `: cannot move it into its cgroup (${unmoved})`);
    if (!Array.isArray(spawned)) {
      // execa's message quotes the whole command line, watchdog wrapper included: not for people.
      return notStarted(started, noCwd(step, spawned.code ?? 'error'));
    }
    const [exitCode, sig] = spawned;
    if (stopped) return stoppedOutcome(stopped, started, exitCode, sig);
    const ok = exitCode === 0;
    outcome = {
      status: ok ? 'success' : 'failed',
      exitCode,
      signal: sig,
      durationMs: Date.now() - started,
    };
  } finally {
    options.signal.removeEventListener('abort', stop);
    if (killTimer) clearTimeout(killTimer);
    // Whatever the step left running dies with it: its group (and the watchdog), its
    // cgroup, then every process that carries its token, however it left the group (the
    // second net under a cgroup: only root could have moved out of it).
    if (pid !== undefined) killGroup(pid, 'SIGKILL');
    cgroupHit = await cgroup?.release().catch(() => undefined);
    await reapStep(
      token,
      pid !== undefined && forks !== undefined ? { first: pid, forks } : undefined,
    );
    if (watchdog && pid !== undefined) watchdog.forget(pid);
    await output?.end(OUTPUT_DRAIN_MS);
    await child?.catch(() => {});
  }
  if (outcome.status === 'success') return outcome;
  const error = await failureText(outcome, limits, options.log, cgroupHit);
  return { ...outcome, error: maskText(error, secrets) };
}

/**
 * Moves the waiting wrapper into the step's cgroup, then lets it go on. Resolves with why
 * it could not be moved (the wrapper is then killed before the step runs), else undefined.
 */
async function openGate(
  child: ReturnType<typeof execa>,
  pid: number,
  cgroup: StepCgroup,
): Promise<string | undefined> {
  const gate = child.stdio[GATE_FD] as NodeJS.WritableStream | undefined;
  try {
    await cgroup.enter(pid);
  } catch (error) {
    killGroup(pid, 'SIGKILL');
    gate?.end();
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
  gate?.on('error', () => {});
  gate?.end('go\n');
  return undefined;
}

/** Why a shell step failed; a limit it hit is named (`memory limit 100 MiB`). */
async function failureText(
  outcome: StepOutcome,
  limits: Limits,
  log: StepLog,
  cgroupHit: LimitName | undefined,
): Promise<string> {
  const { exitCode, signal } = outcome;
  const plain = signal ? `step killed by ${signal}` : `step exited with code ${exitCode}`;
  if (Object.keys(limits).length === 0) return plain;
  if (exitCode === LIMITS_REFUSED_EXIT) return `${plain}: its limits could not be set`;
  const hit = cgroupHit
    ? describeLimit(cgroupHit, limits[cgroupHit]!)
    : limitHit(limits, exitCode, signal, await log.tail());
  return hit ? `${hit} reached (${plain})` : plain;
}

async function runHandler(
  step: Step,
  options: RunStepOptions,
  started: number,
): Promise<StepOutcome> {
  let handler: RegisteredHandler | undefined;
  let handlerLog: { stream: Writable; close(): Promise<void> };
  try {
    handler = findHandler(options.handlers, step.uses!);
    handlerLog = await options.log.handlerStream(options.secrets ?? []);
  } catch (error) {
    return {
      status: 'error',
      exitCode: null,
      signal: null,
      durationMs: Date.now() - started,
      error: error instanceof Error ? error.message : String(error),
    };
  }
  const log = handlerLog.stream;
  try {
    if (!handler) throw new Error(`no handler registered for "${step.uses}"`);
    const aborted = once(options.signal, 'abort').then(() => {
      throw options.signal.reason;
    });
    aborted.catch(() => {});
    const out = await Promise.race([invokeHandler(handler, step, options, log), aborted]);
    const exitCode = out?.exitCode ?? 0;
    const output = out?.output
      ? { output: maskValue(out.output, options.secrets ?? []) as Record<string, unknown> }
      : {};
    return exitCode === 0
      ? {
          status: 'success',
          exitCode: 0,
          signal: null,
          durationMs: Date.now() - started,
          ...output,
        }
      : {
          status: 'failed',
          exitCode,
          signal: null,
          durationMs: Date.now() - started,
          error: out?.error ?? `handler exited with code ${exitCode}`,
          ...output,
        };
  } catch (error) {
    if (options.signal.aborted)
      return stoppedOutcome(stopReasonOf(options.signal), started, null, null);
    const message = error instanceof Error ? error.message : String(error);
    if (!log.writableEnded) log.write(`${message}\n`);
    return {
      status: 'failed',
      exitCode: 1,
      signal: null,
      durationMs: Date.now() - started,
      error: message,
    };
  } finally {
    await handlerLog.close();
  }
}

/** Runs one step to its end. Never throws: every ending is an outcome. */
export async function runStep(step: Step, options: RunStepOptions): Promise<StepOutcome> {
  const started = Date.now();
  return step.uses ? runHandler(step, options, started) : runShell(step, options, started);
}
