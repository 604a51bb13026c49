// Keeps N daemon workers running, as systemd's Restart=always would: a worker that
// exits (killed or not) is started again after a short pause.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { MARKER } from './procs.mjs';
import { track } from './services.mjs';

const RESTART_DELAY_MS = 200;

/** One worker process's life: `name` is its CHAOS_WORKER cookie. */
class Incarnation {
  constructor(slot, n, child) {
    this.slot = slot;
    this.n = n;
    this.name = `${slot.prefix}${slot.index}.${n}`;
    this.child = child;
    this.pid = child.pid;
    this.startedAt = Date.now();
    /** @type {number | undefined} */
    this.readyAt = undefined;
    /** @type {number | undefined} */
    this.killedAt = undefined;
    /** @type {number | undefined} */
    this.exitedAt = undefined;
    this.exit = undefined;
  }
}

class Slot {
  constructor(supervisor, index) {
    this.supervisor = supervisor;
    this.index = index;
    this.prefix = supervisor.prefix;
    /** @type {Incarnation[]} */
    this.incarnations = [];
    this.log = createWriteStream(path.join(supervisor.logDir, `worker-${index}.log`), {
      flags: 'a',
    });
  }

  get current() {
    return this.incarnations.at(-1);
  }

  get running() {
    const c = this.current;
    return c !== undefined && c.exitedAt === undefined;
  }

  spawn() {
    const { command, args, env } = this.supervisor.spec(this.index);
    const n = this.incarnations.length + 1;
    const name = `${this.prefix}${this.index}.${n}`;
    const child = track(
      spawn(command, args, {
        env: { ...process.env, ...env, [MARKER]: name },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const inc = new Incarnation(this, n, child);
    this.incarnations.push(inc);
    let seen = '';
    const onData = (chunk) => {
      this.log.write(chunk);
      if (inc.readyAt !== undefined) return;
      seen += chunk.toString();
      if (this.supervisor.ready.test(seen)) {
        inc.readyAt = Date.now();
        seen = '';
        this.supervisor.emitReady();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      inc.exitedAt = Date.now();
      inc.exit = code ?? signal;
      this.log.write(`\n--- chaos: ${name} exited (${code ?? signal}) ---\n`);
      if (!this.supervisor.stopping) {
        setTimeout(() => {
          if (!this.supervisor.stopping) this.spawn();
        }, RESTART_DELAY_MS);
      }
    });
    return inc;
  }
}

export class Supervisor {
  /**
   * @param {{ count: number, prefix: string, logDir: string, ready: RegExp,
   *   spec: (index: number) => { command: string, args: string[], env?: Record<string, string> } }} o
   */
  constructor(o) {
    this.prefix = o.prefix;
    this.logDir = o.logDir;
    this.ready = o.ready;
    this.spec = o.spec;
    this.stopping = false;
    this.readyListeners = new Set();
    this.slots = Array.from({ length: o.count }, (_, i) => new Slot(this, i + 1));
  }

  emitReady() {
    for (const l of this.readyListeners) l();
  }

  get incarnations() {
    return this.slots.flatMap((s) => s.incarnations);
  }

  byName(name) {
    return this.incarnations.find((i) => i.name === name);
  }

  /** Starts every worker and resolves once each logged its ready line. */
  async start(timeoutMs = 60_000) {
    for (const slot of this.slots) slot.spawn();
    await new Promise((resolve, reject) => {
      const check = () => {
        if (this.slots.every((s) => s.current?.readyAt !== undefined)) {
          clearTimeout(timer);
          this.readyListeners.delete(check);
          resolve(undefined);
        }
      };
      const timer = setTimeout(() => {
        this.readyListeners.delete(check);
        reject(new Error(`workers not ready within ${timeoutMs} ms (see ${this.logDir})`));
      }, timeoutMs);
      this.readyListeners.add(check);
      check();
    });
  }

  /** SIGKILLs the current process of a slot; the supervisor starts a new one. */
  kill(slot) {
    const inc = slot.current;
    if (!inc || inc.exitedAt !== undefined) return undefined;
    inc.killedAt = Date.now();
    inc.child.kill('SIGKILL');
    return inc;
  }

  /** SIGTERM to every worker (graceful stop), SIGKILL after `killAfterMs`. */
  async stop(killAfterMs = 45_000) {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const inc = slot.current;
        if (inc && inc.exitedAt === undefined) {
          const exited = once(inc.child, 'exit');
          inc.child.kill('SIGTERM');
          const timer = setTimeout(() => inc.child.kill('SIGKILL'), killAfterMs);
          await exited;
          clearTimeout(timer);
        }
        await new Promise((resolve) => slot.log.end(resolve));
      }),
    );
  }
}
