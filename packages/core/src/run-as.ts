import { lchown, readFile } from 'node:fs/promises';
import { ErrorCode, JwError } from './errors.js';
import { forEachAsync, walkTree } from './walk.js';

/** The user steps run as (`--run-as USER[:GROUP]`). */
export interface RunAs {
  spec: string;
  uid: number;
  gid: number;
}

async function lookup(file: string, name: string): Promise<string[] | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name) return fields;
  }
  return undefined;
}

/** Names or numbers; a user's group is its login group unless one is given. */
export async function resolveRunAs(spec: string): Promise<RunAs> {
  const [user = '', group] = spec.split(':');
  const bad = (why: string) => new JwError(ErrorCode.BAD_CONFIG, `--run-as ${spec}: ${why}`);
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(user)) uid = Number(user);
  else {
    const entry = await lookup('/etc/passwd', user);
    if (!entry) throw bad(`no user ${user} in /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (group !== undefined && group !== '') {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const entry = await lookup('/etc/group', group);
      if (!entry) throw bad(`no group ${group} in /etc/group`);
      gid = Number(entry[2]);
    }
  }
  if (gid === undefined) throw bad('a numeric user needs a group (USER:GROUP)');
  if (uid === 0) throw bad('steps would run as root');
  if (process.getuid?.() !== 0)
    throw bad('the worker cannot switch users: it does not run as root');
  return { spec, uid, gid };
}

/** Hands the staged workspace to the step's user (links themselves, never their targets). */
export async function chownWorkspace(workspace: string, runAs: RunAs): Promise<void> {
  await lchown(workspace, runAs.uid, runAs.gid);
  await forEachAsync(walkTree(workspace), 64, (e) => lchown(e.abs, runAs.uid, runAs.gid));
}
