import path from 'node:path';
import type { Writable } from 'node:stream';
import { validateHandlerInput } from '../define-handler.js';
import type { Step } from '../job-definition.js';
import type { RegisteredHandler } from './registry.js';
import type { HandlerContext, HandlerLog, HandlerResult, StepProgress } from './types.js';

export interface InvokeOptions {
  workspace: string;
  env: Record<string, string>;
  signal: AbortSignal;
  onProgress?: ((progress: StepProgress) => void) | undefined;
}

function handlerLog(stream: Writable): HandlerLog {
  return {
    // A handler that goes on after its step ended must not crash the worker with "write after end".
    write: (text) => {
      if (!stream.writableEnded && !stream.destroyed) stream.write(text);
    },
    stream,
  };
}

function progressOf(percent: number, message?: string): StepProgress {
  const p = Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
  return { percent: Math.round(p * 10) / 10, ...(message ? { message } : {}) };
}

/**
 * Calls a handler of a `uses` step: a `defineHandler` one with its validated input and a
 * full context, a bare function with the older context. Throws what the handler throws.
 */
export async function invokeHandler(
  handler: RegisteredHandler,
  step: Step,
  options: InvokeOptions,
  stream: Writable,
): Promise<HandlerResult | undefined> {
  const cwd = step.cwd ? path.join(options.workspace, step.cwd) : options.workspace;
  const input = step.with ?? {};
  if (typeof handler === 'function') {
    const out = await handler({
      with: input,
      env: options.env,
      cwd,
      workspace: options.workspace,
      log: stream,
      signal: options.signal,
    });
    return out ?? undefined;
  }
  const checked = await validateHandlerInput(handler.schema, input);
  if (!checked.ok) throw new Error(`bad input for "${handler.name}": ${checked.message}`);
  const log = handlerLog(stream);
  const ctx: HandlerContext = {
    step: { index: step.index, name: step.name },
    workspace: options.workspace,
    cwd,
    env: options.env,
    log,
    signal: options.signal,
    progress(percent, message) {
      const p = progressOf(percent, message);
      log.write(`progress ${p.percent}%${p.message ? ` ${p.message}` : ''}\n`);
      try {
        options.onProgress?.(p);
      } catch {
        // A listener's fault is not the step's.
      }
    },
  };
  return (await handler.run(ctx, checked.value)) ?? undefined;
}
