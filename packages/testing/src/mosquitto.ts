import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, stopChild } from './process.js';
import { makeCertificates } from './tls.js';

const run = promisify(execFile);

export interface MosquittoOptions {
  /** Users and passwords; when given, anonymous clients are refused. */
  users?: Record<string, string>;
  /** Adds a TLS listener with a fresh self-signed CA and a server certificate for 127.0.0.1. */
  tls?: boolean;
  /** The binary; `MOSQUITTO_BIN`, else `/usr/sbin/mosquitto`, else `mosquitto` on the PATH. */
  bin?: string;
}

/** PEM files of the TLS listener, for clients that must trust it. */
export interface MosquittoTls {
  readonly url: string;
  readonly port: number;
  readonly caFile: string;
  /** A client certificate and key signed by the same CA (the listener does not require them). */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

/** A private Mosquitto on a free port with its own persistence folder, for one test file. */
export interface Mosquitto {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly tls: MosquittoTls | undefined;
  /** Starts it again on the same port and store after `stop()`: persistent sessions survive. */
  start(): Promise<void>;
  /** Stops it gracefully (SIGTERM, which saves the store) and waits for the exit. */
  stop(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
  /** Everything it logged so far (for failure messages). */
  log(): string;
}

/** Tries on fresh ports before giving up, when another process took the port first. */
const BIND_TRIES = 5;

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), 'jw-mosquitto-'));
  const storeDir = path.join(dir, 'store');
  await mkdir(storeDir);
  const common = [
    'per_listener_settings false',
    'persistence true',
    `persistence_location ${storeDir}/`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    // As root it would switch to the `mosquitto` user, who cannot read this private folder.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ];
  const certs = options.tls ? await makeCertificates(dir) : undefined;
  if (options.users) {
    const passwordFile = path.join(dir, 'passwd');
    let first = true;
    for (const [user, password] of Object.entries(options.users)) {
      await run('mosquitto_passwd', [...(first ? ['-c'] : []), '-b', passwordFile, user, password]);
      first = false;
    }
    common.push('allow_anonymous false', `password_file ${passwordFile}`);
  } else {
    common.push('allow_anonymous true');
  }
  const configFile = path.join(dir, 'mosquitto.conf');
  const writeConfig = (port: number, tlsPort: number | undefined) => {
    const listeners = [`listener ${port} 127.0.0.1`];
    if (certs && tlsPort !== undefined) {
      listeners.push(
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${certs.ca}`,
        `certfile ${certs.cert}`,
        `keyfile ${certs.key}`,
      );
    }
    return writeFile(configFile, `${[...common, ...listeners].join('\n')}\n`);
  };
  // Debian installs it in /usr/sbin, which is often not on a user's PATH.
  const bin =
    options.bin ??
    process.env.MOSQUITTO_BIN ??
    (existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto');
  let child: ChildProcess | undefined;
  let output = '';

  const start = async () => {
    if (child) throw new Error('mosquitto is already running');
    const proc = spawn(bin, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    const from = output.length;
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        // Listeners are open once the broker says it is running.
        if (/mosquitto version \S+ running/.test(output.slice(from))) {
          proc.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null) => {
        child = undefined;
        const said = output.slice(from);
        reject(
          Object.assign(new Error(`mosquitto exited (${code}) before it was ready:\n${said}`), {
            inUse: /address already in use/i.test(said),
          }),
        );
      };
      proc.stderr?.on('data', onData);
      proc.once('exit', onExit);
    });
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc) await stopChild(proc);
  };

  // Mosquitto cannot listen on port 0 and say which port it got, so a free port is picked
  // and released first; another process may take it meanwhile, and then fresh ports are tried.
  let port = 0;
  let tlsPort: number | undefined;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    tlsPort = certs ? await freePort() : undefined;
    await writeConfig(port, tlsPort);
    try {
      await start();
      break;
    } catch (error) {
      if (!(error as { inUse?: boolean }).inUse || attempt >= BIND_TRIES) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  const tls: MosquittoTls | undefined =
    certs && tlsPort !== undefined
      ? {
          url: `mqtts://127.0.0.1:${tlsPort}`,
          port: tlsPort,
          caFile: certs.ca,
          clientCertFile: certs.clientCert,
          clientKeyFile: certs.clientKey,
        }
      : undefined;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    tls,
    start,
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
}

export interface MqttMessage {
  topic: string;
  payload: string;
}

export interface ClientAuth {
  username?: string;
  password?: string;
}

function brokerArgs(url: string, auth: ClientAuth = {}): string[] {
  const { hostname, port } = new URL(url);
  return [
    '-h',
    hostname,
    '-p',
    port,
    ...(auth.username ? ['-u', auth.username] : []),
    ...(auth.password ? ['-P', auth.password] : []),
  ];
}

/**
 * Publishes with the real `mosquitto_pub` (as a controller's script would). The
 * payload goes through stdin, so it may be large; `null` sends an empty message.
 */
export async function mosquittoPub(
  url: string,
  topic: string,
  payload: string | Buffer | null,
  options: ClientAuth & { retain?: boolean; qos?: 0 | 1 | 2 } = {},
): Promise<void> {
  const args = [
    ...brokerArgs(url, options),
    '-V',
    'mqttv5',
    '-t',
    topic,
    '-q',
    String(options.qos ?? 1),
  ];
  if (options.retain) args.push('-r');
  const child = spawn('mosquitto_pub', [...args, ...(payload === null ? ['-n'] : ['-s'])], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin?.end(payload ?? undefined);
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`mosquitto_pub exited ${code}: ${stderr}`);
}

/** Messages seen on some topics, recorded by a `mosquitto_sub` child. */
export interface TopicWatch {
  readonly messages: readonly MqttMessage[];
  /** Resolves with the first message (seen so far or later) that matches. */
  waitFor(match: (message: MqttMessage) => boolean, timeoutMs?: number): Promise<MqttMessage>;
  /** Messages whose topic is `topic` or lies under `topic/`, payloads parsed as JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read fields of these payloads freely
  json<T = Record<string, any>>(topic: string): T[];
  close(): Promise<void>;
}

const MARK = '\u0001';

/**
 * Subscribes with `mosquitto_sub` and resolves once the broker granted the subscription.
 * `sessionId` makes the session persistent, so that the watch survives a broker restart.
 */
export async function watchTopics(
  url: string,
  filters: string[],
  options: ClientAuth & { sessionId?: string } = {},
): Promise<TopicWatch> {
  const args = [
    ...brokerArgs(url, options),
    '-V',
    'mqttv311',
    '-d',
    '-q',
    '1',
    '-F',
    `${MARK}%t${MARK}%p`,
  ];
  if (options.sessionId) args.push('-i', options.sessionId, '-c');
  for (const filter of filters) args.push('-t', filter);
  // Line-buffered: into a pipe, mosquitto_sub would otherwise hold its output back.
  const child = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages: MqttMessage[] = [];
  const listeners = new Set<() => void>();
  let buffer = '';
  let subscribed = false;
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line.includes('received SUBACK')) subscribed = true;
      const match = new RegExp(`^${MARK}([^${MARK}]*)${MARK}(.*)$`).exec(line);
      if (match) messages.push({ topic: match[1]!, payload: match[2]! });
    }
    for (const listener of listeners) listener();
  });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (!subscribed) return;
      listeners.delete(check);
      resolve();
    };
    listeners.add(check);
    void exited.then(() => reject(new Error('mosquitto_sub exited before subscribing')));
  });
  const waitFor = (match: (message: MqttMessage) => boolean, timeoutMs = 20_000) =>
    new Promise<MqttMessage>((resolve, reject) => {
      const check = () => {
        const found = messages.find(match);
        if (!found) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(
          new Error(
            `no matching MQTT message within ${timeoutMs} ms; saw:\n${messages.map((m) => `${m.topic} ${m.payload.slice(0, 300)}`).join('\n')}`,
          ),
        );
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return {
    messages,
    waitFor,
    json: (topic) =>
      messages
        .filter((m) => m.topic === topic || m.topic.startsWith(`${topic}/`))
        .map((m) => JSON.parse(m.payload)),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      // While it has no broker, mosquitto_sub only retries and ignores SIGTERM.
      const stubborn = setTimeout(() => child.kill('SIGKILL'), 1_000);
      await exited;
      clearTimeout(stubborn);
    },
  };
}
