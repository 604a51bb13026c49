import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './process.js';

export type NatsAuth = { token: string } | { user: string; password: string };

export interface NatsServerOptions {
  auth?: NatsAuth;
  /** Largest message the server accepts, in bytes (server default 1 MiB). */
  maxPayload?: number;
  /** The binary; `NATS_SERVER_BIN` or `nats-server` on the PATH. */
  bin?: string;
}

/** A private `nats-server -js` on a free port with its own store, for one test file. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** The JetStream store; kept across `stop()`/`start()` so streams and consumers survive a restart. */
  readonly storeDir: string;
  /** Starts it again on the same port and store after `stop()`. */
  start(): Promise<void>;
  /** Stops it gracefully (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

function configText(port: number, storeDir: string, options: NatsServerOptions): string {
  const lines = [
    `listen: "127.0.0.1:${port}"`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
  ];
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`);
  const auth = options.auth;
  if (auth && 'token' in auth) lines.push(`authorization { token: ${JSON.stringify(auth.token)} }`);
  if (auth && 'user' in auth) {
    lines.push(
      `authorization { user: ${JSON.stringify(auth.user)}, password: ${JSON.stringify(auth.password)} }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Resolves once the server logs that it is ready; rejects when it exits first. */
function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        child.stderr?.resume();
        resolve();
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`nats-server exited (${code}) before it was ready:\n${output}`));
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'jw-nats-'));
  const storeDir = path.join(dir, 'store');
  const configFile = path.join(dir, 'nats.conf');
  const port = await freePort();
  await writeFile(configFile, configText(port, storeDir, options));
  const bin = options.bin ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  let child: ChildProcess | undefined;

  const start = async () => {
    if (child) throw new Error('nats-server is already running');
    const proc = spawn(bin, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    try {
      await waitReady(proc);
    } catch (error) {
      child = undefined;
      throw error;
    }
  };
  const stop = async () => {
    const proc = child;
    if (!proc) return;
    child = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    start,
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
