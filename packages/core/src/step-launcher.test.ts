import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Launch, type LaunchRequest, StepLauncher } from './step-launcher.js';

let dir: string;
let launcher: StepLauncher;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'jw-launcher-'));
  StepLauncher.want();
  launcher = (await StepLauncher.get())!;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const PATH = process.env.PATH ?? '/usr/bin:/bin';

/** Starts `command` through the launcher with its log in `file` (closed once started). */
async function start(command: string, file: string, more: Partial<LaunchRequest> = {}) {
  const log = await open(file, 'w');
  const started = await launcher.launch({
    cwd: dir,
    logFd: log.fd,
    command,
    env: { PATH },
    ...more,
  });
  await log.close();
  return started;
}

/** Runs `command` to its end; returns the launch, how it ended and its log. */
async function launch(command: string, more: Partial<LaunchRequest> = {}) {
  const file = path.join(dir, `log-${Math.random().toString(16).slice(2)}`);
  const started = await start(command, file, more);
  const exit = 'pid' in started ? await started.exited : undefined;
  return { started, exit, log: await readFile(file, 'utf8') };
}

/** A FIFO in `dir`: a step blocks on it until the test writes or reads it. */
async function fifo(name: string): Promise<string> {
  const file = path.join(dir, name);
  await once(spawn('mkfifo', [file]), 'exit');
  return file;
}

const pidOf = (l: Launch) => ('pid' in l ? l.pid : undefined);

describe.runIf(StepLauncher.supported())('the step launcher', () => {
  it('tells an exit code above 128 from the signal it looks like, and either from 0', async () => {
    expect((await launch('exit 137')).exit).toEqual([137, null]);
    expect((await launch('kill -KILL $$')).exit).toEqual([null, 'SIGKILL']);
    expect((await launch('kill -TERM $$')).exit).toEqual([null, 'SIGTERM']);
    expect((await launch('true')).exit).toEqual([0, null]);
    expect((await launch('exit 3')).exit).toEqual([3, null]);
  });

  it('gives the step exactly its env, every byte of each value, in its cwd, stdin empty, the log on 1 and 2', async () => {
    const env = {
      PATH,
      QUOTES: `it's "quoted" $HOME \`id\` \\ end`,
      LINES: 'one\ntwo\n',
      NODE_OPTIONS: '--require=/nonexistent',
    };
    const { exit, log, started } = await launch(
      'env | LC_ALL=C sort; pwd; cat; echo to-stderr >&2; ls /proc/$$/fd | sort -n | tr "\\n" " "',
      { env },
    );
    expect(exit).toEqual([0, null]);
    const lines = log.split('\n');
    const shown = lines.slice(0, lines.indexOf(dir));
    expect(shown).toEqual(
      [...Object.entries(env).flatMap(([k, v]) => `${k}=${v}`.split('\n')), `PWD=${dir}`].sort(),
    );
    expect(log).toContain(`${dir}\nto-stderr\n0 1 2 `);
    expect(log).not.toContain('0 1 2 3');
    // Its own session: the group kill of a stop reaches it and nothing of the launcher.
    expect(pidOf(started)).toBeGreaterThan(0);
  });

  it('refuses a cwd that is not a directory, and the step does not run', async () => {
    const { started } = await launch('echo ran > ran', { cwd: path.join(dir, 'missing') });
    expect(started).toEqual({ refused: 'cwd' });
  });

  it('runs the step in a session of its own, which a group kill ends', async () => {
    const ready = await fifo('ready');
    const started = await start(
      'sleep 300 & echo up > ./ready; sleep 300; wait',
      path.join(dir, 'group.log'),
    );
    const pid = pidOf(started)!;
    // Read once the step runs its command: its setsid is behind it.
    expect(await readFile(ready, 'utf8')).toBe('up\n');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect([Number(fields[2]), Number(fields[3])]).toEqual([pid, pid]);
    process.kill(-pid, 'SIGKILL');
    expect(await (started as { exited: Promise<unknown> }).exited).toEqual([null, 'SIGKILL']);
  });

  it('says a step is lost when it killed its launcher; the next launcher takes new steps', async () => {
    const old = launcher;
    const { started, exit } = await launch('kill -KILL $PPID; exec sleep 300');
    expect(exit).toBe('lost');
    await old.died;
    process.kill(-pidOf(started)!, 'SIGKILL');
    launcher = (await StepLauncher.get())!;
    expect(launcher).not.toBe(old);
    expect((await launch('exit 4')).exit).toEqual([4, null]);
  });

  it('does not take what node would refuse to pass as it is given', () => {
    const base = { cwd: dir, logFd: 1, command: 'true' };
    expect(StepLauncher.accepts({ ...base, env: { OK_1: 'x', 'A.B': 'x' } })).toBe(true);
    expect(StepLauncher.accepts({ ...base, env: { 'A=B': 'x' } })).toBe(false);
    expect(StepLauncher.accepts({ ...base, env: { A: 'x\0y' } })).toBe(false);
    expect(StepLauncher.accepts({ ...base, env: {}, command: 'true\0' })).toBe(false);
  });

  it('once killed, a step it had started is lost and a new request is refused', async () => {
    const ready = await fifo('killed-ready');
    const running = await start(
      'echo up > ./killed-ready; exec sleep 300',
      path.join(dir, 'k.log'),
    );
    expect(await readFile(ready, 'utf8')).toBe('up\n');
    const old = launcher;
    process.kill(old.pid!, 'SIGKILL');
    await old.died;
    expect(await (running as { exited: Promise<unknown> }).exited).toBe('lost');
    process.kill(-pidOf(running)!, 'SIGKILL');
    expect(await old.launch({ cwd: dir, logFd: 1, command: 'true', env: {} })).toEqual({
      refused: 'launcher-died',
    });
    launcher = (await StepLauncher.get())!;
    expect((await launch('exit 5')).exit).toEqual([5, null]);
  });

  it('lets an idle launcher go, and the next step starts another', async () => {
    const idleMs = StepLauncher.idleMs;
    StepLauncher.idleMs = 1;
    try {
      const old = launcher;
      expect((await launch('true')).exit).toEqual([0, null]);
      await old.died;
      StepLauncher.idleMs = idleMs;
      launcher = (await StepLauncher.get())!;
      expect(launcher).not.toBe(old);
      expect((await launch('exit 6')).exit).toEqual([6, null]);
    } finally {
      StepLauncher.idleMs = idleMs;
    }
  });
});
