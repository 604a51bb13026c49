// What a run leaves on disk once every worker has stopped.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const FINAL = new Set(['success', 'failed', 'timeout', 'cancelled', 'error']);
const TEMP = /(\.tmp|\.jw-tmp)$|\.jw-tmp\./;

async function walk(dir, found = []) {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await walk(p, found);
    else found.push(p);
  }
  return found;
}

export async function scanLeftovers(adapter, ids) {
  /** @type {Map<string, string>} */
  const finalStatus = new Map();
  const claimsBesideResult = [];
  const otherClaims = [];
  const tempFiles = [];
  for (const id of ids) {
    const results = path.join(adapter.jobsDir, id, 'results');
    let status;
    try {
      status = JSON.parse(await readFile(path.join(results, 'result.json'), 'utf8')).status;
    } catch {}
    const isFinal = FINAL.has(status);
    if (isFinal) finalStatus.set(id, status);
    for (const file of await walk(results)) {
      const base = path.basename(file);
      const rel = path.relative(adapter.jobsDir, file);
      if (base === '.claim') (isFinal ? claimsBesideResult : otherClaims).push(rel);
      else if (base.startsWith('.claim')) otherClaims.push(rel);
      else if (TEMP.test(base)) tempFiles.push(rel);
    }
  }
  for (const dir of adapter.stateDirs) {
    for (const file of await walk(dir)) if (TEMP.test(path.basename(file))) tempFiles.push(file);
  }
  // The HTTP agent keeps its outbox under the workspaces dir; that is not a workspace. A
  // workspace's owner and progress files count with it: one leftover, not three.
  const names = (await readdir(adapter.workspacesDir).catch(() => [])).filter(
    (n) => n !== '.http-agent',
  );
  const workspaces = [...new Set(names.map((n) => n.replace(/^\.(.+)\.(owner|progress)$/, '$1')))];
  const processing = adapter.processingDir
    ? await readdir(adapter.processingDir).catch(() => [])
    : [];
  return { finalStatus, workspaces, claimsBesideResult, otherClaims, tempFiles, processing };
}
