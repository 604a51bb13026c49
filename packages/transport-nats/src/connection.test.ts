import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TransportContext } from '@jw/core';
import { waitFor } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { closedPort } from '@jw/testing/process';
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

function contextOf(signal = new AbortController().signal): TransportContext {
  return {
    workerId: 'auth',
    jobsDir: '/nonexistent',
    concurrency: 1,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    cancelJob: () => false,
    activeJobs: () => [],
    signal,
  };
}

async function startWith(options: NatsTransportOptions) {
  const transport = createNatsTransport({ reconnectAttempts: 0, ...options });
  await transport.start(contextOf());
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
      startWith({
        url: tlsServer.url,
        tls: { caFile: tls.caFile },
        connectTimeoutMs: 2_000,
        giveUpAfterMs: 1,
      }),
    ).rejects.toMatchObject({ code: 'TRANSPORT_FAILED' });
  });

  it('waits for a server that is not there yet, then fails with TRANSPORT_FAILED after give-up-after', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    const error = await startWith({ url, giveUpAfterMs: 1_500, reconnectWaitMs: 200 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'TRANSPORT_FAILED' });
    expect((error as Error).message).toContain(`no NATS server at ${url} within 1500 ms`);
    // It waited (not the old instant failure), and the wait is bounded by the setting.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it('connects once the server comes up during the wait', async () => {
    const server = await startNatsServer();
    try {
      await server.stop();
      const transport = createNatsTransport({ url: server.url, reconnectWaitMs: 200 });
      const logs: string[] = [];
      const context = contextOf();
      context.logger = { ...context.logger, warn: (_o, msg) => logs.push(String(msg)) };
      const starting = transport.start(context);
      await waitFor(() => logs.includes('NATS server not reachable; waiting for it'));
      await server.start();
      await starting;
      await transport.stop();
    } finally {
      await server.close();
    }
  });

  it('stops waiting at once when the worker stops', async () => {
    const controller = new AbortController();
    const transport = createNatsTransport({ url: `nats://127.0.0.1:${await closedPort()}` });
    const logs: string[] = [];
    const context = contextOf(controller.signal);
    context.logger = { ...context.logger, warn: (_o, msg) => logs.push(String(msg)) };
    const starting = transport.start(context);
    await waitFor(() => logs.length > 0);
    const stoppedAt = Date.now();
    controller.abort();
    await expect(starting).rejects.toMatchObject({ code: 'TRANSPORT_FAILED' });
    // Not the default 5 min wait: the abort ends it (the limit is generous for a busy machine).
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
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
