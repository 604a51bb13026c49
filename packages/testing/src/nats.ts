import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './process.js';

const run = promisify(execFile);

export type NatsAuth = { token: string } | { user: string; password: string };

export interface NatsServerOptions {
  auth?: NatsAuth;
  /** Largest message the server accepts, in bytes (server default 1 MiB). */
  maxPayload?: number;
  /** More server configuration, appended as is (e.g. operator mode). */
  config?: string;
  /** Serve TLS only, and require a client certificate (mutual TLS). */
  tls?: boolean;
  /** The binary; `nats-server` on the PATH when not given. */
  bin?: string;
}

/** What a client needs to reach a TLS server: the server's certificate to trust, its own certificate and key. */
export interface NatsClientTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A private `nats-server -js` on a free port with its own store, for one test file. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** The JetStream store; kept across `stop()`/`start()` so streams and consumers survive a restart. */
  readonly storeDir: string;
  /** Set when started with `tls`. */
  readonly tls?: NatsClientTls;
  /** Starts it again on the same port and store after `stop()`. */
  start(): Promise<void>;
  /** Stops it gracefully (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

/**
 * Two self-signed certificates, each its own CA: the server's (for 127.0.0.1) is
 * what the client trusts, the client's is what the server trusts.
 */
async function selfSignedPair(
  dir: string,
): Promise<{ server: NatsClientTls; client: NatsClientTls }> {
  const files = (name: string) => ({
    cert: path.join(dir, `${name}.crt`),
    key: path.join(dir, `${name}.key`),
  });
  const server = files('server');
  const client = files('client');
  for (const [name, f] of [
    ['server', server],
    ['client', client],
  ] as const) {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=jw-nats-${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      f.key,
      '-out',
      f.cert,
    ]);
  }
  return {
    server: { caFile: client.cert, certFile: server.cert, keyFile: server.key },
    client: { caFile: server.cert, certFile: client.cert, keyFile: client.key },
  };
}

function configText(
  port: number,
  storeDir: string,
  options: NatsServerOptions,
  tls: NatsClientTls | undefined,
): string {
  const lines = [
    `listen: "127.0.0.1:${port}"`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
  ];
  if (tls) {
    const q = JSON.stringify;
    lines.push(
      `tls { cert_file: ${q(tls.certFile)}, key_file: ${q(tls.keyFile)}, ca_file: ${q(tls.caFile)}, verify: true }`,
    );
  }
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`);
  const auth = options.auth;
  if (auth && 'token' in auth) lines.push(`authorization { token: ${JSON.stringify(auth.token)} }`);
  if (auth && 'user' in auth) {
    lines.push(
      `authorization { user: ${JSON.stringify(auth.user)}, password: ${JSON.stringify(auth.password)} }`,
    );
  }
  if (options.config) lines.push(options.config);
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
  const certs = options.tls ? await selfSignedPair(dir) : undefined;
  await writeFile(configFile, configText(port, storeDir, options, certs?.server));
  const bin = options.bin ?? 'nats-server';
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
    url: `${certs ? 'tls' : 'nats'}://127.0.0.1:${port}`,
    port,
    storeDir,
    ...(certs ? { tls: certs.client } : {}),
    start,
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
