// Private brokers on free ports with their stores in temp folders, as packages/testing
// starts them for the tests (re-spawned here: the bench runs as plain JavaScript).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort, spawnChild, tempDir } from './util.mjs';

export async function startNats() {
  const dir = await tempDir('jw-bench-nats-');
  const port = await freePort();
  const config = path.join(dir, 'nats.conf');
  await writeFile(
    config,
    `listen: "127.0.0.1:${port}"\njetstream { store_dir: ${JSON.stringify(path.join(dir, 'store'))} }\n`,
  );
  const server = spawnChild('nats-server', ['-c', config]);
  await server.waitFor('Server is ready', 30_000);
  return { url: `nats://127.0.0.1:${port}`, stop: server.stop };
}

export async function startMosquitto() {
  const dir = await tempDir('jw-bench-mosquitto-');
  const port = await freePort();
  await mkdir(path.join(dir, 'store'));
  const config = path.join(dir, 'mosquitto.conf');
  await writeFile(
    config,
    [
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${path.join(dir, 'store')}/`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'max_queued_messages 100000',
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );
  const bin =
    process.env.MOSQUITTO_BIN ??
    (existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto');
  const broker = spawnChild(bin, ['-c', config]);
  await broker.waitFor(/mosquitto version \S+ running/, 30_000);
  return { url: `mqtt://127.0.0.1:${port}`, stop: broker.stop };
}
