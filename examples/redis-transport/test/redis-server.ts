import { execFile, spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A private redis-server on a unix socket in its own temp dir: no port to race for, never the machine's 6379. */
export interface RedisServer {
  readonly socketPath: string;
  stop(): Promise<void>;
}

/** The redis-server binary on the PATH (or where Debian puts it), or undefined. */
export async function findRedisServer(): Promise<string | undefined> {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const bin = path.join(dir, 'redis-server');
    if (
      await access(bin, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return bin;
  }
  return undefined;
}

/** XAUTOCLAIM came with Redis 6.2. */
export async function checkVersion(bin: string): Promise<void> {
  const { stdout } = await run(bin, ['--version']);
  const [major = 0, minor = 0] = (/v=(\d+)\.(\d+)/.exec(stdout) ?? []).slice(1).map(Number);
  if (major < 6 || (major === 6 && minor < 2))
    throw new Error(`${bin} is too old for XAUTOCLAIM (needs 6.2): ${stdout.trim()}`);
}

export async function startRedisServer(): Promise<RedisServer> {
  const bin = await findRedisServer();
  if (!bin) throw new Error('redis-server not found (the global setup installs it)');
  const dir = await mkdtemp(path.join(tmpdir(), 'jw-redis-'));
  const socketPath = path.join(dir, 'redis.sock');
  // Port 0: no TCP listener at all. No snapshots, no append-only file.
  const args = ['--port', '0', '--unixsocket', socketPath, '--unixsocketperm', '700'];
  args.push('--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no');
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // 7.0 says "ready to accept connections at", 7.2 "Ready to accept connections unix".
      if (/ready to accept connections/i.test(output)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${output}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`redis-server not ready after 60 s:\n${output}`)),
      60_000,
    );
  });
  try {
    await Promise.race([ready, late]);
  } catch (error) {
    // Never leave a server behind when the test cannot use it.
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    socketPath,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
