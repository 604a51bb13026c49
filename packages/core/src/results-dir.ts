import { constants } from 'node:fs';
import { lstat, mkdir, readdir, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, JwError } from './errors.js';
import { randomHex } from './random-hex.js';

const { O_WRONLY, O_RDONLY, O_CREAT, O_TRUNC, O_EXCL, O_APPEND, O_NOFOLLOW } = constants;

/**
 * Open flags of every file the worker writes in `results/` (SPEC 4: never through a
 * link). A link in the file's place fails the open with ELOOP (EEXIST for NEW).
 */
export const NO_FOLLOW = {
  /** Create or truncate. */
  write: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
  /** Create a file that must not exist yet (temp files, claims). */
  create: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
  append: O_WRONLY | O_APPEND | O_NOFOLLOW,
  read: O_RDONLY | O_NOFOLLOW,
} as const;

/** The `results/` name of the job dir (duplicated from manifest.ts to keep this module a leaf). */
const RESULTS = 'results';

/** Names the worker writes at the top of `results/` (SPEC 4, 6). */
const OWN_NAMES = ['result.json', '.claim', '.claim.takeover'];

/**
 * A fixed-length temp name in the same directory: short whatever the target's name
 * (a 255-byte artifact name would not fit with a suffix), and never an artifact's name.
 */
export function tempName(dir: string): string {
  return path.join(dir, `.jw-${randomHex(6)}.tmp`);
}

/**
 * True when a temp file we made was gone at its rename or link (ENOENT), and another try
 * is left: the worker that took over a dead holder's job removes the temp files it finds,
 * and cannot tell one made a moment ago by a racing worker from the dead holder's.
 */
export function tempVanished(error: unknown, attempt: number): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 3;
}

/** The refusal of a link in `results/` (BAD_JOB): the worker never writes through one. */
export function linkRefused(rel: string): JwError {
  const where = rel ? `${RESULTS}/${rel}` : RESULTS;
  return new JwError(
    ErrorCode.BAD_JOB,
    `${where} is a symlink: the worker never writes through a link into or inside results/ (SPEC 4)`,
  );
}

/** ELOOP from an O_NOFOLLOW open (or EEXIST from a NEW one onto a link) means a link was there. */
export async function refuseIfLink(file: string, rel: string, error: unknown): Promise<never> {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'EEXIST') {
    const info = await lstat(file).catch(() => undefined);
    if (info?.isSymbolicLink()) throw linkRefused(rel);
  }
  throw error;
}

async function lstatOrNone(file: string) {
  return lstat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
}

/** What `openResultsDir` found. */
export interface ResultsDirState {
  dir: string;
  /** Made just now: empty, so there is nothing in it to read or to check. */
  created: boolean;
  /** The names of step logs it held (an earlier attempt's, to be replaced). */
  stepLogs: string[];
}

const STEP_LOG_NAME = /^step_\d+\.log$/;

/**
 * Makes sure `{jobDir}/results` is a real directory (creating it when missing) and that
 * none of the worker's own files in it is a link. `jobDir` must be a real path.
 * Throws BAD_JOB for a link (nothing was written), an errno error when the drive fails.
 * A results/ that `mkdir` makes is new and real (mkdir never follows a link in its
 * place): it is neither looked at nor listed again.
 */
export async function openResultsDir(jobDir: string): Promise<ResultsDirState> {
  const dir = path.join(jobDir, RESULTS);
  let info = await lstatOrNone(dir);
  if (!info) {
    const made = await mkdir(dir).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
        return false;
      },
    );
    if (made) return { dir, created: true, stepLogs: [] };
    info = await lstat(dir);
  }
  if (info.isSymbolicLink()) throw linkRefused('');
  if (!info.isDirectory()) throw new JwError(ErrorCode.BAD_JOB, `${RESULTS} is not a directory`);
  if ((await realpath(dir)) !== dir) throw linkRefused('');
  const names = await readdir(dir);
  const stepLogs = names.filter((n) => STEP_LOG_NAME.test(n));
  const own = names.filter((n) => OWN_NAMES.includes(n)).concat(stepLogs);
  for (const name of own) {
    if ((await lstat(path.join(dir, name))).isSymbolicLink()) throw linkRefused(name);
  }
  return { dir, created: false, stepLogs };
}

/** `openResultsDir` for callers that need only the path. */
export async function prepareResultsDir(jobDir: string): Promise<string> {
  return (await openResultsDir(jobDir)).dir;
}

/**
 * Directories below `results/` for artifacts, each made without following a link: a
 * component that is a link is refused, a stale file where a directory goes is replaced.
 * One instance per sync, so each directory is checked once.
 */
export class ResultsDirs {
  readonly #root: string;
  readonly #ready = new Map<string, Promise<void>>();

  /** `resultsDir` must be a real path checked by prepareResultsDir. */
  constructor(resultsDir: string) {
    this.#root = resultsDir;
  }

  /** Ensures `results/{rel}` (a `/`-separated directory path, '' for results/ itself). */
  ensure(rel: string): Promise<void> {
    if (rel === '' || rel === '.') return Promise.resolve();
    let ready = this.#ready.get(rel);
    if (!ready) {
      ready = this.#make(rel);
      this.#ready.set(rel, ready);
    }
    return ready;
  }

  async #make(rel: string): Promise<void> {
    const parent = path.posix.dirname(rel);
    await this.ensure(parent === '.' ? '' : parent);
    const abs = path.join(this.#root, rel);
    let info = await lstatOrNone(abs);
    if (info?.isSymbolicLink()) throw linkRefused(rel);
    if (info && !info.isDirectory()) {
      await unlink(abs);
      info = undefined;
    }
    if (!info) {
      await mkdir(abs).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      info = await lstat(abs);
      if (info.isSymbolicLink()) throw linkRefused(rel);
      if (!info.isDirectory())
        throw new JwError(ErrorCode.SYNC_FAILED, `${RESULTS}/${rel} is not a directory`);
    }
    if ((await realpath(abs)) !== abs) throw linkRefused(rel);
  }
}

/** Temp names the worker uses now (`.jw-….tmp`) and used before (`.x.….tmp`, `x.….jw-tmp`). */
const TEMP_NAME = /^\.jw-[0-9a-f]+\.tmp$|^\..+\.[0-9a-f]+\.tmp$|\.[0-9a-f]+\.jw-tmp$/;
/** A temp file this old has no writer left: a worker making one finishes within seconds. */
const TEMP_STALE_MS = 60_000;

/**
 * Removes temp files a killed worker left in `results/` (its own files and artifact
 * copies) last changed before `before`, never following a link. Called by the worker
 * that holds the job's claim: a temp file older than its claim is no live writer's.
 */
export async function removeStaleTemps(
  resultsDir: string,
  before = Date.now() - TEMP_STALE_MS,
): Promise<number> {
  let removed = 0;
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await visit(file);
      else if (entry.isFile() && TEMP_NAME.test(entry.name)) {
        const info = await lstat(file).catch(() => undefined);
        if (
          info &&
          info.mtimeMs < before &&
          (await unlink(file).then(
            () => true,
            () => false,
          ))
        )
          removed++;
      }
    }
  };
  await visit(resultsDir);
  return removed;
}
