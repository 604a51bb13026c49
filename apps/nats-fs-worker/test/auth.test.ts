import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { collect, ready, startWorker, submit } from './helpers.js';

const TOKEN = 'tok-3f9a1c77e2';
const PASSWORD = 'pw-8b2d64a0c1';

let tokenServer: NatsServer;
let userServer: NatsServer;
let tlsServer: NatsServer;
let box: Sandbox;

beforeAll(async () => {
  [tokenServer, userServer, tlsServer] = await Promise.all([
    startNatsServer({ auth: { token: TOKEN } }),
    startNatsServer({ auth: { user: 'worker', password: PASSWORD } }),
    startNatsServer({ tls: true }),
  ]);
});

afterAll(async () => {
  await Promise.all([tokenServer?.close(), userServer?.close(), tlsServer?.close()]);
});

beforeEach(async () => {
  box = await createSandbox('jw-nats-auth-');
});

afterEach(async () => {
  await box.cleanup();
});

/** A job whose step dumps its whole environment into an artifact. */
async function envJob(id: string) {
  await box.makeJob(id, { steps: ['env > env.txt'] });
}

async function runOne(
  nc: NatsConnection,
  id: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<string> {
  await envJob(id);
  const results = await collect(nc, `jobs.results.${id}`);
  const worker = startWorker(['-j', box.jobsDir, '-w', box.workspacesDir, ...args], { env });
  await ready(worker);
  await submit(nc, 'jobs.pending', { id });
  expect((await worker.exited).code).toBe(0);
  expect((await results.waitFor(1))[0]!.json()).toMatchObject({ id, status: 'success' });
  // Secrets stay out of logs too.
  expect(worker.stdout + worker.stderr).not.toMatch(new RegExp(`${TOKEN}|${PASSWORD}`));
  return readFile(path.join(box.jobsDir, id, 'results', 'env.txt'), 'utf8');
}

describe('authentication', () => {
  it('connects with a token from -t, and from NATS_TOKEN, which steps never see', async () => {
    const nc = await connect({ servers: tokenServer.url, token: TOKEN });
    try {
      const byFlag = await runOne(
        nc,
        'tok-flag',
        ['-u', tokenServer.url, '-t', TOKEN, '--id', 'tok'],
        {},
      );
      expect(byFlag).toContain('JW_JOB_ID=tok-flag');
      expect(byFlag).not.toContain(TOKEN);
      const byEnv = await runOne(nc, 'tok-env', ['--id', 'tok'], {
        NATS_URL: tokenServer.url,
        NATS_TOKEN: TOKEN,
      });
      expect(byEnv).toContain('JW_JOB_ID=tok-env');
      expect(byEnv).toContain(`NATS_URL=${tokenServer.url}`);
      expect(byEnv).not.toContain(TOKEN);
      expect(byEnv).not.toContain('NATS_TOKEN');
    } finally {
      await nc.close();
    }
  });

  it('connects with a username and password, from flags and from env, which steps never see', async () => {
    const nc = await connect({ servers: userServer.url, user: 'worker', pass: PASSWORD });
    try {
      const byFlag = await runOne(
        nc,
        'user-flag',
        ['-u', userServer.url, '-n', 'worker', '-p', PASSWORD, '--id', 'user'],
        {},
      );
      expect(byFlag).not.toContain(PASSWORD);
      const byEnv = await runOne(nc, 'user-env', ['--id', 'user'], {
        NATS_URL: userServer.url,
        NATS_USERNAME: 'worker',
        NATS_PASSWORD: PASSWORD,
      });
      expect(byEnv).toContain('JW_JOB_ID=user-env');
      expect(byEnv).not.toContain(PASSWORD);
      expect(byEnv).not.toContain('NATS_PASSWORD');
    } finally {
      await nc.close();
    }
  });

  it('connects over mutual TLS with --tls-ca, --tls-cert and --tls-key', async () => {
    const tls = tlsServer.tls!;
    const nc = await connect({ servers: tlsServer.url, tls });
    try {
      await runOne(
        nc,
        'tls-job',
        [
          '-u',
          tlsServer.url,
          '--tls-ca',
          tls.caFile,
          '--tls-cert',
          tls.certFile,
          '--tls-key',
          tls.keyFile,
        ],
        {},
      );
    } finally {
      await nc.close();
    }
  });

  it('exits 2 when the server refuses the credentials', async () => {
    const worker = startWorker(['-u', tokenServer.url, '-t', 'wrong-token', '-j', box.jobsDir]);
    expect((await worker.exited).code).toBe(2);
    const noAuth = startWorker(['-u', userServer.url, '-j', box.jobsDir]);
    expect((await noAuth.exited).code).toBe(2);
  });
});
