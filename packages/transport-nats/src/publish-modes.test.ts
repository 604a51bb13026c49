import { silentLogger } from '@jw/core';
import { type NatsServer, startNatsServer } from '@jw/testing/nats';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PublishModes } from './publish-modes.js';
import { Publisher } from './publisher.js';

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
/** A second connection that sees every stream list request the first one makes. */
let spy: NatsConnection;
let lists = 0;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
  jsm = await jetstreamManager(nc);
  spy = await connect({ servers: server.url });
  spy.subscribe('$JS.API.STREAM.LIST', {
    callback: () => {
      lists++;
    },
  });
  await spy.flush();
});

afterAll(async () => {
  await spy?.close();
  await nc?.close();
  await server?.close();
});

/** Stream list requests made by `action`, counted once the spy has read all the server sent. */
async function listsDuring(action: () => Promise<unknown>): Promise<number> {
  // Copies of earlier requests may still be on their way to the spy.
  await spy.flush();
  const before = lists;
  await action();
  await spy.flush();
  return lists - before;
}

/** Resolves on the advisory for `stream` of kind `kind`, seen by `modes`. */
function advisories(modes: PublishModes) {
  const waiting = new Map<string, () => void>();
  const sub = modes.watch(nc, silentLogger, (subject) => {
    for (const [suffix, done] of waiting) {
      if (subject.endsWith(suffix)) {
        waiting.delete(suffix);
        done();
      }
    }
  });
  return {
    sub,
    next: (kind: 'CREATED' | 'UPDATED' | 'DELETED', stream: string) =>
      new Promise<void>((resolve) => waiting.set(`.${kind}.${stream}`, resolve)),
  };
}

describe('PublishModes', () => {
  it('learns a family once, and again when its streams are created, changed or deleted', async () => {
    const modes = new PublishModes(jsm, { families: ['m1.results.>'] });
    const seen = advisories(modes);
    await nc.flush();

    expect(
      await listsDuring(async () => {
        expect(await modes.modeOf('m1.results.a')).toBe('core');
        expect(await modes.modeOf('m1.results.b')).toBe('core');
      }),
    ).toBe(1);

    let advisory = seen.next('CREATED', 'M1R');
    await jsm.streams.add({ name: 'M1R', subjects: ['m1.results.>'] });
    await advisory;
    expect(await modes.modeOf('m1.results.c')).toBe('jetstream');
    expect(await listsDuring(() => modes.modeOf('m1.results.d'))).toBe(0);

    advisory = seen.next('UPDATED', 'M1R');
    await jsm.streams.update('M1R', { subjects: ['m1.results.kept'] });
    await advisory;
    expect(await modes.modeOf('m1.results.c')).toBe('core');
    expect(await modes.modeOf('m1.results.kept')).toBe('jetstream');

    advisory = seen.next('DELETED', 'M1R');
    await jsm.streams.delete('M1R');
    await advisory;
    expect(await modes.modeOf('m1.results.kept')).toBe('core');

    // Recreated: JetStream again.
    advisory = seen.next('CREATED', 'M1R');
    await jsm.streams.add({ name: 'M1R', subjects: ['m1.results.>'] });
    await advisory;
    expect(await modes.modeOf('m1.results.e')).toBe('jetstream');
    seen.sub.unsubscribe();
  });

  it('tells a subject outside the family by itself, and a wildcard stream capturing part of it', async () => {
    await jsm.streams.add({ name: 'M2R', subjects: ['m2.results.*'] });
    const modes = new PublishModes(jsm, { families: ['m2.results.>'] });
    expect(await modes.modeOf('m2.results.a')).toBe('jetstream');
    // A job id with a dot: under the family, but not captured by `m2.results.*`.
    expect(await modes.modeOf('m2.results.a.b')).toBe('core');
    expect(await modes.modeOf('m2.dead')).toBe('core');
  });

  it('asks again once what it learnt is older than relearnAfterMs, with no advisories read', async () => {
    const modes = new PublishModes(jsm, { families: ['m3.results.>'], relearnAfterMs: 0 });
    expect(await modes.modeOf('m3.results.a')).toBe('core');
    await jsm.streams.add({ name: 'M3R', subjects: ['m3.results.>'] });
    expect(await modes.modeOf('m3.results.a')).toBe('jetstream');
  });
});

describe('Publisher', () => {
  it('forgets the mode when a publish fails: a result still gets out after its stream was deleted', async () => {
    await jsm.streams.add({ name: 'M4R', subjects: ['m4.results.>'] });
    // No advisories, no ageing out: only the failed publish can tell it the stream is gone.
    const modes = new PublishModes(jsm, {
      families: ['m4.results.>'],
      relearnAfterMs: 2 ** 31,
    });
    const publisher = new Publisher(nc, jetstream(nc), modes, silentLogger);
    expect(await publisher.publish('m4.results.a', 'one', { msgId: 'a' })).toBe('jetstream');
    expect((await jsm.streams.info('M4R')).state.messages).toBe(1);

    await jsm.streams.delete('M4R');
    // Nobody stores it now, so the JetStream publish fails; were the mode kept, it would fail for ever.
    expect(await publisher.publish('m4.results.b', 'two', { msgId: 'b' })).toBe('core');
    const got = (async () => {
      const sub = nc.subscribe('m4.results.c', { max: 1 });
      for await (const m of sub) return m.string();
    })();
    await nc.flush();
    expect(await publisher.publish('m4.results.c', 'three', { msgId: 'c' })).toBe('core');
    expect(await got).toBe('three');
  });
});
