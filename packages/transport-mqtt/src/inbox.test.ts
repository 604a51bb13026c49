import { describe, expect, it } from 'vitest';
import { Inbox } from './inbox.js';

describe('Inbox', () => {
  it('hands out a preferred item first, else the oldest', async () => {
    const inbox = new Inbox<string>((item) => item.startsWith('claimed:'));
    const signal = new AbortController().signal;
    inbox.push('request-1');
    inbox.push('request-2');
    inbox.push('claimed:job');
    expect(inbox.count((item) => item.startsWith('request'))).toBe(2);
    expect(await inbox.take(signal)).toBe('claimed:job');
    expect(await inbox.take(signal)).toBe('request-1');
    expect(await inbox.take(signal)).toBe('request-2');
  });

  it('gives an item pushed while a take waits straight to it', async () => {
    const inbox = new Inbox<string>();
    const taken = inbox.take(new AbortController().signal);
    expect(inbox.waiting).toBe(true);
    inbox.push('now');
    expect(await taken).toBe('now');
    expect(inbox.size).toBe(0);
  });
});
