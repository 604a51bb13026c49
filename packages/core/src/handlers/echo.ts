import { z } from 'zod';
import { defineHandler } from '../define-handler.js';

/** `echo`: writes `message` (and a newline) to the step log. For trying a worker out. */
export const echoHandler = defineHandler({
  name: 'echo',
  schema: z.object({ message: z.string() }),
  run(ctx, { message }) {
    ctx.log.write(message.endsWith('\n') ? message : `${message}\n`);
  },
});
