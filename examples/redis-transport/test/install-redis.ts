import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { checkVersion, findRedisServer } from './redis-server.js';

const run = promisify(execFile);

/** Installs redis-server from Debian's packages when missing, once for the whole run. */
export default async function installRedis(): Promise<void> {
  let bin = await findRedisServer();
  if (!bin) {
    console.warn('redis-transport tests: installing redis-server from Debian packages');
    const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
    const apt = async (...args: string[]) => {
      const [cmd, ...rest] = [...sudo, 'apt-get', ...args];
      await run(cmd!, rest, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    };
    await apt('update', '-qq');
    await apt('install', '-y', '-qq', '--no-install-recommends', 'redis-server');
    // The package starts a system service on 6379: the tests never use it.
    bin = await findRedisServer();
    if (!bin) throw new Error('redis-server is still missing after apt-get install');
  }
  await checkVersion(bin);
}
