import type { JwError } from './errors.js';
import type { JobEvent } from './events.js';
import type { Manifest, ResultMessage } from './manifest.js';
import type { RequestBody } from './request.js';
import type { Delivery, ReleaseReason, Transport, TransportContext } from './transport.js';

export type Settlement =
  | { kind: 'complete'; label: string; result: ResultMessage; manifest: Manifest | undefined }
  | { kind: 'reject'; label: string; error: JwError; result: ResultMessage | undefined }
  | { kind: 'release'; label: string; reason: ReleaseReason; delayMs: number };

export interface MemoryTransport extends Transport {
  /** Adds a request; a waiting `next` takes it at once. */
  push(body: RequestBody): void;
  /** No more requests will come: `next` resolves null once the queue is empty. */
  end(): void;
  readonly settlements: Settlement[];
  readonly events: JobEvent[];
  context: TransportContext | undefined;
}

/**
 * An in-process transport: requests come from `push`, settlements are recorded.
 * Used for dry runs, for embedding the worker in a program, and in tests.
 */
export function createMemoryTransport(
  initial: RequestBody[] = [],
  options: { name?: string; ended?: boolean } = {},
): MemoryTransport {
  const queue = [...initial];
  let ended = options.ended ?? false;
  let waiter: (() => void) | undefined;
  let seq = 0;
  const wake = () => {
    waiter?.();
    waiter = undefined;
  };
  const transport: MemoryTransport = {
    name: options.name ?? 'memory',
    settlements: [],
    events: [],
    context: undefined,
    push(body) {
      queue.push(body);
      wake();
    },
    end() {
      ended = true;
      wake();
    },
    async start(context) {
      transport.context = context;
    },
    async next(signal) {
      while (queue.length === 0) {
        if (ended || signal.aborted) return null;
        await new Promise<void>((resolve) => {
          waiter = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
      const body = queue.shift()!;
      const label = `memory-${++seq}`;
      const delivery: Delivery = {
        body,
        label,
        onEvent: (event) => {
          transport.events.push(event);
        },
        complete: async (result, manifest) => {
          transport.settlements.push({ kind: 'complete', label, result, manifest });
        },
        reject: async (error, result) => {
          transport.settlements.push({ kind: 'reject', label, error, result });
        },
        release: async (reason, delayMs) => {
          transport.settlements.push({ kind: 'release', label, reason, delayMs });
        },
      };
      return delivery;
    },
    async stop() {},
  };
  return transport;
}
