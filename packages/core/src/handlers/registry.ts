import { isHandler, validateHandlerInput } from '../define-handler.js';
import { ErrorCode, JwError } from '../errors.js';
import type { Step } from '../job-definition.js';
import { builtinHandlers } from './builtins.js';
import type { AnyHandler, Handlers, StepHandler } from './types.js';

export type RegisteredHandler = AnyHandler | StepHandler;

const maps = new WeakMap<object, ReadonlyMap<string, RegisteredHandler>>();

/**
 * The handlers a worker has: the built-ins, then the worker's own, which win over a
 * built-in of the same name (a worker may replace `http.request` with one that adds its
 * proxy or credentials). Throws BAD_CONFIG on two handlers of one name in an array.
 */
export function handlerMap(handlers?: Handlers): ReadonlyMap<string, RegisteredHandler> {
  if (!handlers) return BUILTINS;
  const cached = maps.get(handlers);
  if (cached) return cached;
  const map = new Map<string, RegisteredHandler>(BUILTINS);
  if (Array.isArray(handlers)) {
    const seen = new Set<string>();
    for (const h of handlers as readonly AnyHandler[]) {
      if (!isHandler(h))
        throw new JwError(ErrorCode.BAD_CONFIG, 'handlers[] must be made by defineHandler()');
      if (seen.has(h.name))
        throw new JwError(ErrorCode.BAD_CONFIG, `two handlers are named "${h.name}"`);
      seen.add(h.name);
      map.set(h.name, h);
    }
  } else {
    for (const [name, h] of Object.entries(handlers as Record<string, RegisteredHandler>)) {
      if (typeof h !== 'function' && !isHandler(h))
        throw new JwError(
          ErrorCode.BAD_CONFIG,
          `handler "${name}" must be made by defineHandler() or be a function`,
        );
      map.set(name, h);
    }
  }
  maps.set(handlers, map);
  return map;
}

const BUILTINS: ReadonlyMap<string, RegisteredHandler> = new Map(
  builtinHandlers.map((h) => [h.name, h]),
);

export function findHandler(
  handlers: Handlers | undefined,
  name: string,
): RegisteredHandler | undefined {
  return handlerMap(handlers).get(name);
}

/**
 * Every `uses` step names a handler the worker has, and its `with` passes that
 * handler's schema: otherwise the job is a BAD_JOB, before anything is staged or run.
 */
export async function checkUsesSteps(
  steps: readonly Step[],
  handlers: Handlers | undefined,
): Promise<void> {
  const map = handlerMap(handlers);
  for (const step of steps) {
    if (!step.uses) continue;
    const handler = map.get(step.uses);
    if (!handler)
      throw new JwError(
        ErrorCode.BAD_JOB,
        `step ${step.index} uses unknown handler "${step.uses}" (this worker has: ${[...map.keys()].sort().join(', ')})`,
      );
    if (typeof handler === 'function') continue;
    const checked = await validateHandlerInput(handler.schema, step.with ?? {});
    if (!checked.ok)
      throw new JwError(
        ErrorCode.BAD_JOB,
        `step ${step.index} (${step.name}): bad input for "${step.uses}": ${checked.message}`,
      );
  }
}
