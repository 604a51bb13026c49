import {
  type FileHandle,
  link,
  lstat,
  open,
  readdir,
  readFile,
  stat,
  unlink,
} from 'node:fs/promises';
import path from 'node:path';
import { processGone, selfIdentity } from './host.js';
import { RESULTS_DIR, readManifest, writeFileAtomic } from './manifest.js';
import { forEachLimit } from './pool.js';
import { randomHex } from './random-hex.js';
import type { JobRequest } from './request.js';
import { NO_FOLLOW, tempName, tempVanished } from './results-dir.js';

export const CLAIM_FILE = '.claim';
const TAKEOVER_FILE = '.claim.takeover';
/** A takeover lock older than this belongs to a worker that died while taking over. */
const TAKEOVER_STALE_MS = 10_000;

/** `results/.claim` (SPEC 6). */
export interface ClaimRecord {
  token: string;
  workerId: string;
  pid: number;
  hostname: string;
  /** The pid namespace, so that containers sharing a hostname do not judge each other's pids. */
  pidNamespace: string | null;
  /** See ProcessIdentity: a pid reused by a later process does not keep the claim alive. */
  pidStartTime?: string | null;
  attempt: number;
  claimedAt: string;
  renewedAt: string;
  expiresAt: string;
  leaseMs: number;
  /** The request that started this attempt, so a recovered job runs as it was asked. */
  request?: JobRequest;
}

/** Milliseconds left on a claim's lease; 0 when it is expired or its process is gone on this host. */
export async function leaseRemaining(claim: ClaimRecord, now = Date.now()): Promise<number> {
  const left = Date.parse(claim.expiresAt) - now;
  if (!(left > 0)) return 0;
  if (await processGone(claim)) return 0;
  return left;
}

export async function readClaim(resultsDir: string): Promise<ClaimRecord | undefined> {
  try {
    const text = await readFile(path.join(resultsDir, CLAIM_FILE), {
      encoding: 'utf8',
      flag: NO_FOLLOW.read,
    });
    const value = JSON.parse(text) as ClaimRecord;
    return typeof value?.token === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

export interface ClaimOptions {
  workerId: string;
  leaseMs: number;
  request?: JobRequest;
  /**
   * `results/` was made just now by this worker: no earlier attempt can have left a
   * manifest to count attempts from (on a first try: a claim found in the way means
   * another worker is there, and the manifest is read).
   */
  freshResults?: boolean;
}

export type ClaimAttempt =
  | { kind: 'claimed'; claim: Claim; previous: ClaimRecord | undefined }
  | { kind: 'busy'; holder: ClaimRecord; retryInMs: number };

/** A held claim: renew it while the job runs, release it when the job ends. */
export class Claim {
  #record: ClaimRecord;
  readonly #file: string;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<unknown> = Promise.resolve();
  #ended = false;

  constructor(resultsDir: string, record: ClaimRecord) {
    this.#file = path.join(resultsDir, CLAIM_FILE);
    this.#record = record;
  }

  get attempt(): number {
    return this.#record.attempt;
  }

  get record(): ClaimRecord {
    return this.#record;
  }

  /** Extends the lease. False when the claim is no longer ours (another worker took it over). */
  renew(): Promise<boolean> {
    const run = this.#renewing.then(() => this.#renewOnce());
    this.#renewing = run.catch(() => false);
    return run;
  }

  async #renewOnce(): Promise<boolean> {
    if (this.#ended) return false;
    const current = await readClaim(path.dirname(this.#file));
    if (current?.token !== this.#record.token || this.#ended) return false;
    const now = Date.now();
    this.#record = {
      ...this.#record,
      renewedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.#record.leaseMs).toISOString(),
    };
    await writeFileAtomic(this.#file, JSON.stringify(this.#record));
    return true;
  }

  /** Renews every third of the lease; calls `onLost` once if the claim is taken away. */
  keepAlive(onLost: () => void): void {
    this.stopKeepAlive();
    const every = Math.max(50, Math.floor(this.#record.leaseMs / 3));
    this.#timer = setInterval(() => {
      this.renew().then(
        (ours) => {
          if (!ours && !this.#ended && this.#timer) {
            this.stopKeepAlive();
            onLost();
          }
        },
        // A failed renewal (shared drive hiccup) is retried on the next tick; the lease has slack.
        () => {},
      );
    }, every);
    this.#timer.unref();
  }

  stopKeepAlive(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops renewing and waits for a renewal in flight, so none re-creates the file after us. */
  async #end(): Promise<void> {
    this.#ended = true;
    this.stopKeepAlive();
    await this.#renewing;
  }

  /**
   * Ends the lease now but keeps the claim, with its request and attempt, so the
   * next worker takes the job over at once and runs it as it was asked.
   */
  async expire(): Promise<void> {
    await this.#end();
    const current = await readClaim(path.dirname(this.#file));
    if (current?.token !== this.#record.token) return;
    const now = new Date().toISOString();
    this.#record = { ...this.#record, renewedAt: now, expiresAt: now };
    await writeFileAtomic(this.#file, JSON.stringify(this.#record));
  }

  /** Removes the claim file if it is still ours. */
  async release(): Promise<void> {
    await this.#end();
    const current = await readClaim(path.dirname(this.#file));
    if (current?.token === this.#record.token) await unlink(this.#file).catch(() => {});
  }
}

async function newRecord(options: ClaimOptions, attempt: number): Promise<ClaimRecord> {
  const now = Date.now();
  const self = await selfIdentity();
  return {
    token: randomHex(12),
    workerId: options.workerId,
    pid: self.pid,
    hostname: self.hostname,
    pidNamespace: self.pidNamespace,
    pidStartTime: self.pidStartTime ?? null,
    attempt,
    claimedAt: new Date(now).toISOString(),
    renewedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + options.leaseMs).toISOString(),
    leaseMs: options.leaseMs,
    ...(options.request ? { request: options.request } : {}),
  };
}

async function previousAttempt(jobDir: string, stale: ClaimRecord | undefined): Promise<number> {
  const manifest = await readManifest(jobDir);
  return Math.max(manifest?.attempt ?? 0, stale?.attempt ?? 0);
}

/** O_EXCL never follows a link in the file's place (EEXIST). */
/**
 * Creates `file` with `data` only if it does not exist. The content is written to a temp
 * file first and then hard-linked into place, so a worker killed at any instant never
 * leaves an empty claim (which would look held for ever); `link` refuses a name that
 * exists, a symlink included.
 */
async function createExclusive(file: string, data: string, direct = false): Promise<boolean> {
  if (direct) return createInPlace(file, data);
  for (let attempt = 1; ; attempt++) {
    const tmp = tempName(path.dirname(file));
    const handle = await open(tmp, NO_FOLLOW.create, 0o666);
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close().catch(() => {});
    }
    try {
      await link(tmp, file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      if (!tempVanished(error, attempt)) throw error;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }
}

/**
 * `createExclusive` in a `results/` made just now: the file is created exclusively in
 * place, three trips instead of five. Only a worker racing for the same job could see it
 * half-written, and it takes that for a claim being written (it waits, then reads it);
 * one left empty by a kill is cleared as a dead writer's once stale, one whose write
 * failed (a full disk) is removed at once.
 */
async function createInPlace(file: string, data: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, NO_FOLLOW.create, 0o666);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(data);
    // On NFS a full disk may show only here, when the data is sent.
    await handle.close();
  } catch (error) {
    // Ours alone (made exclusively): an empty claim must not block the job (a full disk).
    await handle.close().catch(() => {});
    await unlink(file).catch(() => {});
    throw error;
  }
  return true;
}

/** A claim file that cannot be read as one and has not changed for a while: a dead writer's. */
async function isDeadUnreadableClaim(file: string): Promise<boolean> {
  const info = await lstat(file).catch(() => undefined);
  return !!info && info.isFile() && Date.now() - info.mtimeMs > TAKEOVER_STALE_MS;
}

/** Takes the lock that serialises takeovers of one stale claim; clears a lock left by a dead worker. */
async function lockTakeover(resultsDir: string): Promise<boolean> {
  const file = path.join(resultsDir, TAKEOVER_FILE);
  if (await createExclusive(file, String(process.pid))) return true;
  const info = await stat(file).catch(() => undefined);
  if (info && Date.now() - info.mtimeMs > TAKEOVER_STALE_MS) await unlink(file).catch(() => {});
  return false;
}

/**
 * Claims a job (SPEC 6): creates `results/.claim` exclusively, or takes over a claim
 * whose lease expired. Returns `busy` with the rest of the lease when a live worker holds it.
 */
export async function claimJob(jobDir: string, options: ClaimOptions): Promise<ClaimAttempt> {
  const resultsDir = path.join(jobDir, RESULTS_DIR);
  const file = path.join(resultsDir, CLAIM_FILE);
  for (let round = 0; ; round++) {
    // A results/ made just now has no claim to read: the exclusive create is the look
    // (one that came meanwhile makes it fail, and the next round reads it).
    const fresh = options.freshResults && round === 0;
    const existing = fresh ? undefined : await readClaim(resultsDir);
    if (!existing) {
      // No claim (or an unreadable one being written right now): try to create it.
      const before = fresh ? 0 : await previousAttempt(jobDir, undefined);
      const record = await newRecord(options, before + 1);
      if (await createExclusive(file, JSON.stringify(record), fresh)) {
        return { kind: 'claimed', claim: new Claim(resultsDir, record), previous: undefined };
      }
      // Left empty or torn by an older worker killed mid-write: clear it under the lock.
      if ((await isDeadUnreadableClaim(file)) && (await lockTakeover(resultsDir))) {
        try {
          if (!(await readClaim(resultsDir)) && (await isDeadUnreadableClaim(file)))
            await unlink(file).catch(() => {});
        } finally {
          await unlink(path.join(resultsDir, TAKEOVER_FILE)).catch(() => {});
        }
        continue;
      }
      if (round > 20) return { kind: 'busy', holder: record, retryInMs: 1000 };
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const left = await leaseRemaining(existing);
    if (left > 0) return { kind: 'busy', holder: existing, retryInMs: left };
    if (!(await lockTakeover(resultsDir))) {
      if (round > 20) return { kind: 'busy', holder: existing, retryInMs: 1000 };
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    try {
      const again = await readClaim(resultsDir);
      if (again?.token !== existing.token) continue;
      const record = await newRecord(options, (await previousAttempt(jobDir, existing)) + 1);
      await writeFileAtomic(file, JSON.stringify(record));
      return { kind: 'claimed', claim: new Claim(resultsDir, record), previous: existing };
    } finally {
      await unlink(path.join(resultsDir, TAKEOVER_FILE)).catch(() => {});
    }
  }
}

/**
 * Removes a claim left by a dead worker beside a final result, once that result has been
 * sent again (the worker died between writing result.json and delivering the result).
 */
export async function removeStaleClaim(jobDir: string, token: string): Promise<void> {
  const resultsDir = path.join(jobDir, RESULTS_DIR);
  const current = await readClaim(resultsDir);
  if (current?.token === token) await unlink(path.join(resultsDir, CLAIM_FILE)).catch(() => {});
}

/**
 * Jobs of dead workers (SPEC 6, recovery): a claim whose lease expired (a worker died, or
 * gave the job back on shutdown). Without a final result the job is to be run again; with
 * one, its result message may never have been sent. A job without a claim is never stale,
 * so the scan reads one file per job dir (in parallel) and more only where a claim is left.
 */
export async function findStaleJobs(jobsDir: string, concurrency = 16): Promise<string[]> {
  const entries = await readdir(jobsDir, { withFileTypes: true }).catch(() => []);
  const stale: string[] = [];
  const dirs = entries.filter((e) => e.isDirectory() || e.isSymbolicLink());
  await forEachLimit(dirs, concurrency, async (entry) => {
    const resultsDir = path.join(jobsDir, entry.name, RESULTS_DIR);
    const claim = await readClaim(resultsDir);
    if (
      claim
        ? (await leaseRemaining(claim)) === 0
        : await isDeadUnreadableClaim(path.join(resultsDir, CLAIM_FILE))
    )
      stale.push(entry.name);
  });
  return stale.sort();
}
