import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { nkeys } from '@nats-io/transport-node';

type KeyPair = ReturnType<typeof nkeys.createOperator>;

const b64url = (data: string | Uint8Array) => Buffer.from(data).toString('base64url');

/** A NATS JWT (v2) with the given claims, signed by `issuer`. */
function signJwt(issuer: KeyPair, subject: string, name: string, nats: object): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims = {
    jti: randomBytes(16).toString('hex').toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const payload = b64url(JSON.stringify(claims));
  const signature = issuer.sign(new TextEncoder().encode(`${header}.${payload}`));
  return `${header}.${payload}.${b64url(signature)}`;
}

/**
 * Decentralised auth for a test server: an operator, one JetStream-enabled
 * account and one user, with the user's `.creds` file (JWT plus nkey seed).
 */
export async function operatorSetup(dir: string): Promise<{ config: string; credsFile: string }> {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  // JetStream needs a system account to be set.
  const system = nkeys.createAccount();
  const user = nkeys.createUser();
  const operatorJwt = signJwt(operator, operator.getPublicKey(), 'jw-op', { type: 'operator' });
  const unlimited = {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
  };
  const accountJwt = signJwt(operator, account.getPublicKey(), 'jw', {
    type: 'account',
    limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
  });
  const systemJwt = signJwt(operator, system.getPublicKey(), 'SYS', {
    type: 'account',
    limits: unlimited,
  });
  const userJwt = signJwt(account, user.getPublicKey(), 'jw-worker', {
    type: 'user',
    pub: {},
    sub: {},
    subs: -1,
    data: -1,
    payload: -1,
  });
  const operatorFile = path.join(dir, 'operator.jwt');
  await writeFile(operatorFile, operatorJwt);
  const credsFile = path.join(dir, 'worker.creds');
  const seed = new TextDecoder().decode(user.getSeed());
  await writeFile(
    credsFile,
    `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
      `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
  );
  const config = [
    `operator: ${JSON.stringify(operatorFile)}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    `resolver_preload: { ${account.getPublicKey()}: ${JSON.stringify(accountJwt)}, ${system.getPublicKey()}: ${JSON.stringify(systemJwt)} }`,
  ].join('\n');
  return { config, credsFile };
}
