// One-off generator for package.json files (kept for adding packages consistently).
import { writeFileSync, existsSync } from 'node:fs';
const pkgs = [
  ['packages/core', '@jw/core', 'Core of jw: validation, staging, step runner, logs, artifact sync, manifest, claims and the worker loop.', { execa: '^9.6.0', 'fast-glob': '^3.3.3', picomatch: '^4.0.2', zod: '^4.1.0' }, { '@types/picomatch': '^4.0.0' }],
  ['packages/cli', '@jw/cli', 'Shared plumbing for jw worker binaries: flags with env fallbacks, logs, signals, health, dry run, exit codes.', { '@jw/core': 'workspace:^', commander: '^14.0.0', pino: '^10.0.0', 'pino-pretty': '^13.0.0', zod: '^4.1.0' }, {}],
  ['packages/transport-file', '@jw/transport-file', 'Watched-folder transport for jw: pending/processing/done/failed queue folders.', { '@jw/core': 'workspace:^', chokidar: '^5.0.0' }, {}],
  ['packages/transport-mqtt', '@jw/transport-mqtt', 'MQTT transport for jw: doorbell messages, claims on the shared drive, lease recovery.', { '@jw/core': 'workspace:^', mqtt: '^5.14.0' }, {}],
  ['packages/transport-nats', '@jw/transport-nats', 'NATS JetStream transport for jw: durable pull consumer, in-progress acks, ack after result.', { '@jw/core': 'workspace:^', '@nats-io/transport-node': '^3.4.0', '@nats-io/jetstream': '^3.4.0' }, {}],
  ['packages/transport-http-poll', '@jw/transport-http-poll', 'HTTP polling transport for jw, speaking the OPEVA agent protocol, plus a reference backend.', { '@jw/core': 'workspace:^' }, {}],
];
const apps = [
  ['apps/file-worker', 'file-worker', 'Run jw jobs dropped into a watched folder.', { '@jw/cli': 'workspace:^', '@jw/transport-file': 'workspace:^' }],
  ['apps/mqtt-fs-worker', 'mqtt-fs-worker', 'Run jw jobs signalled over MQTT (drop-in for the MQTT job worker).', { '@jw/cli': 'workspace:^', '@jw/transport-mqtt': 'workspace:^' }],
  ['apps/nats-fs-worker', 'nats-fs-worker', 'Run jw jobs signalled over NATS JetStream (drop-in for the NATS job worker).', { '@jw/cli': 'workspace:^', '@jw/transport-nats': 'workspace:^' }],
  ['apps/http-agent', 'http-agent', 'Run jw jobs handed out by an HTTP backend (drop-in for the OPEVA job worker agent).', { '@jw/cli': 'workspace:^', '@jw/transport-http-poll': 'workspace:^' }],
];
const common = {
  version: '0.1.0',
  license: 'Apache-2.0',
  type: 'module',
  engines: { node: '>=20.19.0' },
  repository: { type: 'git', url: 'https://github.com/jw-dev/jw' },
};
for (const [dir, name, description, dependencies, devDependencies] of pkgs) {
  const p = {
    name, description, ...common,
    exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' }, './package.json': './package.json' },
    main: './dist/index.js', types: './dist/index.d.ts',
    files: ['dist', 'README.md'],
    sideEffects: false,
    scripts: { build: 'tsup', test: 'vitest run', typecheck: 'tsc --noEmit' },
    dependencies, devDependencies,
    publishConfig: { access: 'public' },
  };
  if (!existsSync(`${dir}/package.json`)) writeFileSync(`${dir}/package.json`, `${JSON.stringify(p, null, 2)}\n`);
}
for (const [dir, name, description, dependencies] of apps) {
  const p = {
    name, description, ...common,
    bin: { [name]: './dist/main.js' },
    exports: { './package.json': './package.json' },
    files: ['dist', 'README.md'],
    scripts: { build: 'tsup', test: 'vitest run', typecheck: 'tsc --noEmit' },
    dependencies, devDependencies: { '@jw/testing': 'workspace:*' },
    publishConfig: { access: 'public' },
  };
  if (!existsSync(`${dir}/package.json`)) writeFileSync(`${dir}/package.json`, `${JSON.stringify(p, null, 2)}\n`);
}
