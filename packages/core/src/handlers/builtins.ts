import { echoHandler } from './echo.js';
import { httpRequestHandler } from './http-request.js';
import { sleepHandler } from './sleep.js';
import type { AnyHandler } from './types.js';

/** The handlers every worker has (SPEC 3), whatever its transport. */
export const builtinHandlers: readonly AnyHandler[] = Object.freeze([
  echoHandler,
  sleepHandler,
  httpRequestHandler,
]);

export { echoHandler, httpRequestHandler, sleepHandler };
