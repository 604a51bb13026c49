import { setTimeout as wait } from 'node:timers/promises';
import { z } from 'zod';
import { defineHandler } from '../define-handler.js';

/** `sleep`: waits `seconds`; a time-out or cancel ends the wait at once. */
export const sleepHandler = defineHandler({
  name: 'sleep',
  schema: z.object({
    seconds: z
      .number()
      .nonnegative()
      .max(7 * 24 * 3600),
  }),
  async run(ctx, { seconds }) {
    ctx.log.write(`sleeping ${seconds} s\n`);
    await wait(seconds * 1000, undefined, { signal: ctx.signal });
  },
});
