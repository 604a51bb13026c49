import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TransportContext } from '@jw/core';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { freePort } from '@jw/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsTransport, type NatsTransportOptions } from './index.js';
import { operatorSetup } from './operator.test-fixture.js';

let tokenServer: NatsServer;
let userServer: NatsServer;
let tlsServer: NatsServer;
let operatorServer: NatsServer;
let credsDir: string;
let credsFile: string;

beforeAll(async () => {
  credsDir = await mkdtemp(path.join(tmpdir(), 'jw-nats-creds-'));
  const operator = await operatorSetup(credsDir);
  credsFile = operator.credsFile;
  [tokenServer, userServer, tlsServer, operatorServer] = await Promise.all([
    startNatsServer({ auth: { token: 's3cret-token' } }),
    startNatsServer({ auth: { user: 'jw', password: 'pa55' } }),
    startNatsServer({ tls: true }),
    startNatsServer({ config: operator.config }),
  ]);
});

afterAll(async () => {
  await Promise.all([
    tokenServer?.close(),
    userServer?.close(),
    tlsServer?.close(),
    operatorServer?.close(),
  ]);
  await rm(credsDir, { recursive: true, force: true });
});

const context: TransportContext = {
  workerId: 'auth',
  jobsDir: '/nonexistent',
  concurrency: 1,
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  cancelJob: () => false,
  activeJobs: () => [],
  signal: new AbortController().signal,
};

async function startWith(options: NatsTransportOptions) {
  const transport = createNatsTransport({ reconnectAttempts: 0, ...options });
  await transport.start(context);
  await transport.stop();
}

describe('connecting', () => {
  it('authenticates with a token', async () => {
    await startWith({ url: tokenServer.url, token: 's3cret-token' });
  });

  it('authenticates with a username and password', async () => {
    await startWith({ url: userServer.url, username: 'jw', password: 'pa55' });
  });

  it('refuses wrong credentials as bad settings', async () => {
    await expect(startWith({ url: tokenServer.url, token: 'wrong' })).rejects.toMatchObject({
      code: 'BAD_CONFIG',
    });
    await expect(
      startWith({ url: userServer.url, username: 'jw', password: 'nope' }),
    ).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });

  it('connects over mutual TLS, and not without a client certificate', async () => {
    const tls = tlsServer.tls!;
    await startWith({ url: tlsServer.url, tls });
    await expect(
      startWith({ url: tlsServer.url, tls: { caFile: tls.caFile }, connectTimeoutMs: 2_000 }),
    ).rejects.toMatchObject({ code: 'TRANSPORT_FAILED' });
  });

  it('fails with TRANSPORT_FAILED when no server listens', async () => {
    const port = await freePort();
    await expect(startWith({ url: `nats://127.0.0.1:${port}` })).rejects.toMatchObject({
      code: 'TRANSPORT_FAILED',
    });
  });

  it('authenticates with a creds file against an operator-mode server', async () => {
    await startWith({ url: operatorServer.url, credsFile });
    await expect(startWith({ url: operatorServer.url })).rejects.toMatchObject({
      code: 'BAD_CONFIG',
    });
  });

  it('refuses an unreadable creds file as bad settings', async () => {
    await expect(
      startWith({ url: tokenServer.url, credsFile: '/nonexistent/user.creds' }),
    ).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });

  it('names the transport and its secrets', () => {
    const transport = createNatsTransport();
    expect(transport.name).toBe('nats');
    expect(transport.secretEnv).toEqual(expect.arrayContaining(['NATS_PASSWORD', 'NATS_TOKEN']));
  });
});
