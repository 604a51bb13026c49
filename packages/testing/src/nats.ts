import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopChild } from './process.js';
import { makeCertificates } from './tls.js';

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

/** The CA-signed test certificates as the server's and the client's side of mutual TLS. */
async function certificatePair(
  dir: string,
): Promise<{ server: NatsClientTls; client: NatsClientTls }> {
  const c = await makeCertificates(dir);
  return {
    server: { caFile: c.ca, certFile: c.cert, keyFile: c.key },
    client: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey },
  };
}

function configText(
  port: number | 'any',
  storeDir: string,
  options: NatsServerOptions,
  tls: NatsClientTls | undefined,
): string {
  const lines = [
    // -1: the server picks a free port itself, so no other process can take it first.
    `listen: "127.0.0.1:${port === 'any' ? -1 : port}"`,
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

/** Resolves with the client port once the server logs that it is ready; rejects when it exits first. */
function waitReady(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server is ready')) {
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        child.stderr?.resume();
        const port = /Listening for client connections on [^\s]*:(\d+)/.exec(output)?.[1];
        if (port) resolve(Number(port));
        else reject(new Error(`nats-server did not say its client port:\n${output}`));
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
  let port: number | undefined;
  const certs = options.tls ? await certificatePair(dir) : undefined;
  const bin = options.bin ?? 'nats-server';
  let child: ChildProcess | undefined;

  // The first start binds a port of the server's choosing; a restart binds the same one again.
  const start = async () => {
    if (child) throw new Error('nats-server is already running');
    await writeFile(configFile, configText(port ?? 'any', storeDir, options, certs?.server));
    const proc = spawn(bin, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    try {
      port = await waitReady(proc);
    } catch (error) {
      child = undefined;
      throw error;
    }
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc) await stopChild(proc);
  };

  await start();
  const known = port as number;
  return {
    url: `${certs ? 'tls' : 'nats'}://127.0.0.1:${known}`,
    port: known,
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
