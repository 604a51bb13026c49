import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * A free TCP port on 127.0.0.1 (the OS picks it; released before returning).
 * Another process may take it before it is used: prefer a server that binds
 * port 0 itself, and `closedPort()` for "nothing listens".
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Ports only root can bind, so no test server (they bind port 0: ephemeral ports)
 * ever takes one; none is on fetch's list of blocked ports.
 */
const PRIVILEGED_CANDIDATES = [47, 51, 61, 97, 127, 211, 1022, 1023];

/** Whether a connection to 127.0.0.1:port is refused right now. */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/**
 * A port on 127.0.0.1 where nothing listens and nothing will start to: a
 * privileged port that refuses connections now. Unlike a released free port,
 * no other test's server can bind it meanwhile, so a client sees ECONNREFUSED.
 */
export async function closedPort(): Promise<number> {
  for (const port of PRIVILEGED_CANDIDATES) {
    if (await refuses(port)) return port;
  }
  throw new Error(`every candidate port (${PRIVILEGED_CANDIDATES.join(', ')}) has a listener`);
}

export interface Spawned {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when `pattern` shows up on stdout or stderr. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Spawns a process (e.g. a built worker: `process.execPath, [bin, ...args]`) and records its output. */
export function spawnProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Spawned {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const l of listeners) l();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const l of listeners) l();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    kill(signal = 'SIGTERM') {
      child.kill(signal);
    },
    waitForOutput(pattern, timeoutMs = 60_000) {
      const test = () => {
        const all = stdout + stderr;
        return typeof pattern === 'string' ? all.includes(pattern) : pattern.test(all);
      };
      return new Promise((resolve, reject) => {
        if (test()) return resolve(stdout + stderr);
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `output ${pattern} not seen within ${timeoutMs} ms; got:\n${stdout}\n${stderr}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          if (!test()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(stdout + stderr);
        };
        listeners.add(check);
        exited.then(() => {
          if (listeners.has(check)) {
            check();
            if (listeners.has(check)) {
              clearTimeout(timer);
              listeners.delete(check);
              reject(new Error(`process exited before ${pattern}; got:\n${stdout}\n${stderr}`));
            }
          }
        });
      });
    },
  };
}

/**
 * True while a process with this pid runs. A zombie (exited, not yet reaped — a
 * container's PID 1 may never reap orphans) counts as gone.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Stops a child gracefully (SIGTERM) and waits for it to exit; a child already gone returns at once. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}
