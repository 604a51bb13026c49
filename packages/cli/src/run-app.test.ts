import { createMemoryTransport, type MemoryTransport } from '@jw/core';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import { defineOptions, option } from './options.js';
import { EXIT, runApp, type WorkerApp } from './run-app.js';

let box: Sandbox;
let transport: MemoryTransport;
let seen: { options: Record<string, unknown>; common: Record<string, unknown> } | undefined;
beforeEach(async () => {
  box = await createSandbox();
  transport = createMemoryTransport([]);
  seen = undefined;
});
afterEach(async () => {
  await box.cleanup();
});

const app: WorkerApp = {
  name: 'test-worker',
  version: '9.9.9',
  description: 'test',
  envPrefix: 'T',
  defaults: { maxJobs: 1 },
  options: {
    url: { flags: '-u, --url <url>', env: 'T_URL', default: 'x://default', description: 'url' },
    clean: {
      flags: '--clean',
      env: 'T_CLEAN',
      type: 'boolean',
      default: false,
      description: 'clean',
    },
    secret: {
      flags: '-p, --password <p>',
      env: 'T_PASSWORD_FILE_LIKE',
      secret: true,
      description: 'secret',
    },
  },
  createTransport: ({ options, common }) => {
    seen = { options, common: common as unknown as Record<string, unknown> };
    return transport;
  },
};

const argv = (...args: string[]) => [
  'node',
  'test-worker',
  '--jobs-dir',
  box.jobsDir,
  '--workspaces-dir',
  box.workspacesDir,
  '--log-level',
  'silent',
  ...args,
];

describe('runApp', () => {
  it('takes flags over env over defaults and runs the worker to its max-jobs', async () => {
    transport.push({ id: 'a', steps: ['true'] });
    transport.push({ id: 'b', steps: ['true'] });
    const code = await runApp(app, argv('--url', 'x://flag'), {
      PATH: process.env.PATH,
      T_URL: 'x://env',
      T_CLEAN: 'yes',
      T_CONCURRENCY: '2',
    });
    expect(code).toBe(EXIT.OK);
    expect(seen?.options).toMatchObject({ url: 'x://flag', clean: true });
    expect(seen?.common).toMatchObject({
      maxJobs: 1,
      concurrency: 2,
      id: 'worker-01',
      leaseMs: 30_000,
      timeoutMs: 0,
    });
    expect(transport.settlements).toHaveLength(1);
  });

  it('gives a typed table its parsed values, with P_ env names under the app prefix', async () => {
    const table = defineOptions({
      stream: option.string({
        flags: '-s, --stream <s>',
        env: 'P_STREAM',
        default: 'JOBS',
        description: '',
      }),
      wait: option.duration({
        flags: '--wait <d>',
        env: 'P_WAIT',
        unit: 's',
        default: '30',
        description: '',
      }),
      creds: option.string({ flags: '--creds <f>', env: 'P_CREDS', secret: true, description: '' }),
    });
    let got: { stream: string; wait: number; creds: string | undefined } | undefined;
    const typed: WorkerApp<typeof table> = {
      ...app,
      options: table,
      createTransport: ({ options }) => {
        expectTypeOf(options).toEqualTypeOf<{
          stream: string;
          wait: number;
          creds: string | undefined;
        }>();
        got = options;
        return transport;
      },
    };
    transport.push({ id: 't', steps: ['true'] });
    const env = { PATH: process.env.PATH, T_WAIT: '2m', T_CREDS: '/c', P_STREAM: 'NOT_OURS' };
    expect(await runApp(typed, argv(), env)).toBe(EXIT.OK);
    expect(got).toEqual({ stream: 'JOBS', wait: 120_000, creds: '/c' });
    // A bad value is a bad setting, named by its env var, before any worker starts.
    expect(await runApp(typed, argv(), { ...env, T_WAIT: 'soon' })).toBe(EXIT.BAD_SETTINGS);
    expect(transport.settlements).toHaveLength(1);
  });

  it('lets a --no-x flag fall back to its env var when it is not given', async () => {
    const negated: WorkerApp = {
      ...app,
      options: {
        recover: {
          flags: '--no-recover',
          env: 'T_RECOVER',
          type: 'boolean',
          default: true,
          description: 'recovery',
        },
      },
    };
    transport.push({ id: 'n', steps: ['true'] });
    expect(await runApp(negated, argv(), { PATH: process.env.PATH, T_RECOVER: 'false' })).toBe(
      EXIT.OK,
    );
    expect(seen?.options.recover).toBe(false);
    transport = createMemoryTransport([{ id: 'm', steps: ['true'] }]);
    expect(await runApp(negated, argv(), { PATH: process.env.PATH })).toBe(EXIT.OK);
    expect(seen?.options.recover).toBe(true);
    transport = createMemoryTransport([{ id: 'o', steps: ['true'] }]);
    expect(
      await runApp(negated, argv('--no-recover'), { PATH: process.env.PATH, T_RECOVER: 'true' }),
    ).toBe(EXIT.OK);
    expect(seen?.options.recover).toBe(false);
  });

  it('keeps secret settings out of step env', async () => {
    transport.push({ id: 'env', steps: ['env > env.txt'] });
    const code = await runApp(app, argv(), {
      PATH: process.env.PATH,
      T_PASSWORD_FILE_LIKE: 'hidden',
      VISIBLE: 'yes',
    });
    expect(code).toBe(EXIT.OK);
    const { readFile } = await import('node:fs/promises');
    const env = await readFile(`${box.jobsDir}/env/results/env.txt`, 'utf8');
    expect(env).toContain('VISIBLE=yes');
    expect(env).not.toContain('hidden');
  });

  it.each([
    [['--max-jobs', '-2'], {}],
    [['--concurrency', 'two'], {}],
    [['--unknown'], {}],
    [['extra-arg'], {}],
    [[], { T_CLEAN: 'perhaps' }],
    [[], { T_IDLE_TIMEOUT: 'later' }],
  ])('exits 2 on bad settings %j %j', async (args, env) => {
    expect(await runApp(app, argv(...args), { PATH: process.env.PATH, ...env })).toBe(
      EXIT.BAD_SETTINGS,
    );
    expect(seen).toBeUndefined();
  });

  it('exits 0 for --help and --version', async () => {
    expect(await runApp(app, ['node', 'x', '--version'], {})).toBe(EXIT.OK);
    expect(await runApp(app, ['node', 'x', '--help'], {})).toBe(EXIT.OK);
  });

  it('exits 1 when the transport fails for good', async () => {
    const broken: WorkerApp = {
      ...app,
      createTransport: () => ({
        name: 'broken',
        start: async () => {},
        next: async () => {
          throw new Error('gone');
        },
        stop: async () => {},
      }),
    };
    expect(await runApp(broken, argv(), { PATH: process.env.PATH })).toBe(EXIT.FAULT);
  });
});
