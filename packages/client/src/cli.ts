import { createInterface } from 'node:readline/promises';
import { isFinalState, type ResultMessage, type StepInput } from '@jw/core';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ClientError, isClientError, WaitTimeoutError } from './errors.js';
import { eventLine, resultLine, statusText, workersText } from './format.js';
import { readStatus } from './status.js';
import { followLogs } from './step-logs.js';
import { cancelJob, type JobHandle, listWorkers, submitJob } from './submit.js';

/** Exit codes besides the job's own: 1 an error, 2 bad usage, 124 the wait timed out, 130 Ctrl-C. */
export const EXIT = { ERROR: 1, USAGE: 2, TIMEOUT: 124, INTERRUPTED: 130 } as const;

/** Ends the process with `code` (thrown so that actions unwind; caught in `runCli`). */
class Exit {
  constructor(readonly code: number) {}
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `90` (seconds), `500ms`, `30s`, `5m`, `2h`, as the worker binaries take them; in ms. */
function duration(raw: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(raw);
  if (!match) throw new InvalidArgumentError(`"${raw}" is not a duration (90, 500ms, 30s, 5m, 2h)`);
  const unit = (match[2]?.toLowerCase() ?? 's') as keyof typeof UNIT_MS;
  return Math.round(Number(match[1]) * UNIT_MS[unit]);
}

function envPair(raw: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`"${raw}" is not KEY=VALUE`);
  return { ...previous, [raw.slice(0, eq)]: raw.slice(eq + 1) };
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/** The job's exit code as a process exit code (0-255; a job without one that did not succeed is 1). */
export function exitCodeOf(result: ResultMessage): number {
  const code = result.exitCode;
  if (typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 255) return code;
  return result.status === 'success' ? 0 : EXIT.ERROR;
}

const jobsDirOption = () =>
  new Option('-j, --jobs-dir <dir>', 'the jobs dir the workers read')
    .env('JW_JOBS_DIR')
    .makeOptionMandatory();
const viaOption = () =>
  new Option(
    '--via <url>',
    'file:QUEUE_DIR, mqtt://host:1883, nats://host:4222 or http://backend:port',
  )
    .env('JW_VIA')
    .makeOptionMandatory();

/** What to say when no result came in time, from what the drive shows. */
async function timeoutHint(handle: JobHandle, jobsDir: string, via: string): Promise<string> {
  const info = await readStatus(jobsDir, handle.id).catch(() => undefined);
  if (!info?.manifest && !info?.claim)
    return `no worker has started it: is a worker running on ${via}? wrong --via or --jobs-dir?`;
  return `it is still ${info.manifest?.status ?? 'claimed'}: jw logs ${handle.id} --follow, or jw cancel ${handle.id} --via ${via}`;
}

/** Ctrl-C while following: ask on a terminal whether to cancel, else stop following. */
function onInterrupt(handle: JobHandle, stopFollowing: () => void): () => void {
  let asking = false;
  const listener = () => {
    if (asking || !(process.stdin.isTTY && process.stderr.isTTY)) {
      say(`jw: stopped following; ${handle.id} goes on (jw logs ${handle.id} --follow)`);
      stopFollowing();
      return;
    }
    asking = true;
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    rl.question(`\njw: cancel job ${handle.id}? [y/N] `)
      .then(async (answer) => {
        rl.close();
        asking = false;
        if (/^y(es)?$/i.test(answer.trim())) {
          const outcome = await handle.cancel('cancelled from jw');
          say(`jw: cancel sent${outcome.detail ? ` (${outcome.detail})` : ''}`);
        } else {
          say(`jw: stopped following; ${handle.id} goes on (jw logs ${handle.id} --follow)`);
          stopFollowing();
        }
      })
      .catch(() => {
        rl.close();
        stopFollowing();
      });
  };
  process.on('SIGINT', listener);
  return () => process.off('SIGINT', listener);
}

interface SubmitFlags {
  steps?: string[];
  jobsDir: string;
  via: string;
  id?: string;
  env?: Record<string, string>;
  follow?: boolean;
  wait?: boolean;
  timeout?: number;
  jobTimeout?: number;
  force?: boolean;
  traceparent?: string;
}

async function submitCommand(dir: string | undefined, flags: SubmitFlags): Promise<number> {
  if (!dir === !flags.steps)
    throw new ClientError(
      'give a job dir or --steps, not both',
      'jw submit DIR, or jw submit --steps "make" "make test"',
    );
  const handle = await submitJob({
    via: flags.via,
    jobsDir: flags.jobsDir,
    ...(dir ? { dir } : { steps: flags.steps as StepInput[] }),
    ...(flags.id ? { id: flags.id } : {}),
    ...(flags.env ? { env: flags.env } : {}),
    ...(flags.jobTimeout === undefined ? {} : { timeoutSeconds: flags.jobTimeout / 1000 }),
    ...(flags.force ? { force: true } : {}),
    ...(flags.traceparent ? { traceparent: flags.traceparent } : {}),
  });
  if (!flags.follow && !flags.wait) {
    process.stdout.write(`${handle.id}\n`);
    await handle.close();
    return 0;
  }
  if (flags.follow) say(`jw: submitted ${handle.id}`);
  const stop = new AbortController();
  const stopped = new Promise<never>((_, reject) =>
    stop.signal.addEventListener('abort', () => reject(new Exit(EXIT.INTERRUPTED)), { once: true }),
  );
  stopped.catch(() => {});
  const removeInterrupt = onInterrupt(handle, () => stop.abort());
  const logsDone = flags.follow
    ? (async () => {
        for await (const { chunk } of handle.logs({ signal: stop.signal }))
          process.stdout.write(chunk);
      })()
    : Promise.resolve();
  if (flags.follow) {
    void (async () => {
      // The final state is said once, by the result line.
      for await (const event of handle.events())
        if (!isFinalState(event.state)) say(eventLine(event));
    })();
  }
  try {
    const result = await Promise.race([
      handle.result(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout }),
      stopped,
    ]);
    await Promise.race([logsDone, stopped]);
    if (flags.follow) say(resultLine(result));
    return exitCodeOf(result);
  } catch (error) {
    if (error instanceof WaitTimeoutError) {
      throw new ClientError(error.message, await timeoutHint(handle, flags.jobsDir, flags.via), {
        cause: new Exit(EXIT.TIMEOUT),
      });
    }
    throw error;
  } finally {
    removeInterrupt();
    await handle.close();
  }
}

export function buildProgram(version: string): Command {
  const program = new Command('jw')
    .description('Submit jw jobs, follow their logs, cancel them, list workers.')
    .version(version)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  program
    .command('submit')
    .description('put a job on the shared drive and send its request')
    .argument('[dir]', 'a local job dir (with job.json), copied to {jobs-dir}/{id}')
    .option('-s, --steps <command...>', 'run these shell commands instead of a job dir')
    .addOption(jobsDirOption())
    .addOption(viaOption())
    .option('--id <id>', 'job id (default: job-{date}-{time}-{random})')
    .option('-e, --env <KEY=VALUE>', 'job env, repeatable', envPair)
    .option(
      '-f, --follow',
      "print the step logs (stdout) and progress (stderr); exit with the job's code",
    )
    .option('-w, --wait', "wait quietly; exit with the job's code")
    .option(
      '-t, --timeout <duration>',
      'stop waiting after this long (exit 124): 90, 30s, 5m',
      duration,
    )
    .option(
      '--job-timeout <duration>',
      "the job's own time limit (the request's timeoutSeconds)",
      duration,
    )
    .option('--force', 're-run a job that already has a final result')
    .option('--traceparent <value>', 'W3C trace context the job joins')
    .action(async (dir: string | undefined, flags: SubmitFlags) => {
      throw new Exit(await submitCommand(dir, flags));
    });

  program
    .command('status')
    .description("a job's state from its results/result.json")
    .argument('<id>')
    .addOption(jobsDirOption())
    .option('--json', 'print the manifest as JSON')
    .action(async (id: string, flags: { jobsDir: string; json?: boolean }) => {
      const info = await readStatus(flags.jobsDir, id);
      if (!info.manifest && !info.claim && !(await exists(info.jobDir))) {
        throw new ClientError(
          `no job ${id} in ${flags.jobsDir}`,
          'wrong --jobs-dir, or a typo in the id?',
        );
      }
      process.stdout.write(
        flags.json ? `${JSON.stringify(info.manifest ?? null, null, 2)}\n` : statusText(info),
      );
    });

  program
    .command('logs')
    .description("print a job's step logs")
    .argument('<id>')
    .addOption(jobsDirOption())
    .option('-f, --follow', 'keep printing as they grow, until the job ends')
    .action(async (id: string, flags: { jobsDir: string; follow?: boolean }) => {
      const info = await readStatus(flags.jobsDir, id);
      if (!info.manifest && !flags.follow) {
        throw new ClientError(
          `job ${id} has no logs yet (no results/result.json in ${info.jobDir})`,
          'not started yet? use --follow to wait for it, or check --jobs-dir',
        );
      }
      const stop = new AbortController();
      const onInt = () => stop.abort();
      process.once('SIGINT', onInt);
      try {
        for await (const { chunk } of followLogs(info.jobDir, {
          follow: flags.follow ?? false,
          signal: stop.signal,
        }))
          process.stdout.write(chunk);
      } finally {
        process.off('SIGINT', onInt);
      }
      if (stop.signal.aborted) throw new Exit(EXIT.INTERRUPTED);
    });

  program
    .command('cancel')
    .description('ask the worker running a job to cancel it')
    .argument('<id>')
    .addOption(viaOption())
    .option('--reason <text>', 'recorded with the cancel')
    .action(async (id: string, flags: { via: string; reason?: string }) => {
      const outcome = await cancelJob(flags.via, id, flags.reason);
      const detail = outcome.detail ? ` (${outcome.detail})` : '';
      if (outcome.confirmed === false) {
        say(`jw: cancel for ${id} sent, but no worker stopped it${detail}`);
        throw new Exit(EXIT.ERROR);
      }
      say(`jw: cancel for ${id} sent${detail}`);
    });

  program
    .command('workers')
    .description('the workers their heartbeats name')
    .addOption(viaOption())
    .option(
      '--listen <duration>',
      'NATS: how long to listen for heartbeats (default 11s)',
      duration,
    )
    .option('--json', 'print them as JSON')
    .action(async (flags: { via: string; listen?: number; json?: boolean }) => {
      const workers = await listWorkers(
        flags.via,
        flags.listen === undefined ? {} : { listenMs: flags.listen },
      );
      if (flags.json) process.stdout.write(`${JSON.stringify(workers, null, 2)}\n`);
      else if (workers.length === 0) say('jw: no worker status seen (none running? wrong --via?)');
      else process.stdout.write(workersText(workers));
    });

  return program;
}

async function exists(dir: string): Promise<boolean> {
  const { stat } = await import('node:fs/promises');
  return (await stat(dir).catch(() => undefined)) !== undefined;
}

/** Runs `jw` with these arguments; resolves with the exit code. Never prints a stack trace (unless JW_DEBUG is set). */
export async function runCli(argv: string[], version: string): Promise<number> {
  const program = buildProgram(version);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof Exit) return error.code;
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
      )
        return 0;
      return EXIT.USAGE;
    }
    if (process.env.JW_DEBUG) say(String((error as Error)?.stack ?? error));
    if (isClientError(error)) {
      say(`jw: error: ${error.message}${error.hint ? ` (hint: ${error.hint})` : ''}`);
      const cause = (error as { cause?: unknown }).cause;
      return cause instanceof Exit ? cause.code : EXIT.ERROR;
    }
    say(`jw: error: ${(error as Error)?.message ?? String(error)}`);
    return EXIT.ERROR;
  }
}
