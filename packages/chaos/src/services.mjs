// Child processes the harness owns: brokers, the HTTP backend, workers.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

/** A free TCP port on 127.0.0.1 (the OS picks it; released before returning). */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  server.close();
  await once(server, 'close');
  return port;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Every child the harness started and that still runs. Daemon workers and brokers
 * would outlive a harness that dies or is interrupted; these die with it.
 */
export const children = new Set();
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * A long-running child that can be stopped and started again with the same command:
 * a broker or the backend. `ready` is a pattern its output shows once it serves;
 * every output line goes to `logFile` and to `onLine`.
 */
export class Service {
  constructor({ name, command, args, ready, logFile, onLine, env }) {
    this.name = name;
    this.command = command;
    this.args = args;
    this.readyPattern = ready;
    this.env = env;
    this.onLine = onLine;
    this.log = createWriteStream(logFile, { flags: 'a' });
    this.child = undefined;
    this.restarts = 0;
  }

  async start(timeoutMs = 30_000) {
    if (this.child) throw new Error(`${this.name} is already running`);
    const child = track(
      spawn(this.command, this.args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: this.env ?? process.env,
      }),
    );
    this.child = child;
    let seen = '';
    let buffer = '';
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name} not ready within ${timeoutMs} ms:\n${seen.slice(-2000)}`));
      }, timeoutMs);
      let ready = false;
      const onData = (chunk) => {
        const text = chunk.toString();
        this.log.write(text);
        buffer += text;
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) this.onLine?.(line);
        if (!ready) {
          seen += text;
          if (this.readyPattern.test(seen)) {
            ready = true;
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(undefined);
          }
        }
      };
      const onExit = (code, signal) => {
        clearTimeout(timer);
        this.child = undefined;
        reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready:\n${seen}`));
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', onExit);
    });
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
  }

  /** SIGTERM (a broker saves its store), then SIGKILL if it has not gone after `killAfterMs`. */
  async stop(killAfterMs = 15_000) {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops it, waits `downMs`, starts it again on the same port and store. */
  async restart(downMs) {
    await this.stop();
    await sleep(downMs);
    await this.start();
    this.restarts++;
  }

  async close() {
    await this.stop();
    await new Promise((resolve) => this.log.end(resolve));
  }
}

/** `nats-server -js` on a free port with its own store dir. */
export async function natsService(dir) {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const configFile = path.join(dir, 'nats.conf');
  await writeFile(
    configFile,
    `listen: "127.0.0.1:${port}"\njetstream { store_dir: ${JSON.stringify(path.join(dir, 'store'))} }\n`,
  );
  const service = new Service({
    name: 'nats-server',
    command: process.env.NATS_SERVER_BIN ?? 'nats-server',
    args: ['-c', configFile],
    ready: /Server is ready/,
    logFile: path.join(dir, 'nats-server.log'),
  });
  return { service, url: `nats://127.0.0.1:${port}` };
}

/** Mosquitto with `persistence true` and a store dir, on a free port. */
export async function mosquittoService(dir) {
  const storeDir = path.join(dir, 'store');
  await mkdir(storeDir, { recursive: true });
  const port = await freePort();
  const lines = [
    'per_listener_settings false',
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
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
  const configFile = path.join(dir, 'mosquitto.conf');
  await writeFile(configFile, `${lines.join('\n')}\n`);
  const bin =
    process.env.MOSQUITTO_BIN ??
    (existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto');
  const service = new Service({
    name: 'mosquitto',
    command: bin,
    args: ['-c', configFile],
    ready: /mosquitto version \S+ running/,
    logFile: path.join(dir, 'mosquitto.log'),
  });
  return { service, url: `mqtt://127.0.0.1:${port}` };
}

/** The reference backend of the HTTP agent (in-memory: a restart forgets every job). */
export async function backendService(dir, { bin, staleAfterSeconds, onLine }) {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const service = new Service({
    name: 'reference backend',
    command: process.execPath,
    args: [bin, '--port', String(port), '--stale-after', String(staleAfterSeconds)],
    ready: /reference backend listening/,
    logFile: path.join(dir, 'backend.log'),
    onLine,
  });
  return { service, url: `http://127.0.0.1:${port}` };
}
