// What `npm install` of a worker binary puts on a disk: its tarball and those of the
// workspace packages it depends on at run time, installed in an empty folder.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { measure } from '../report.mjs';
import { appsDir, repo, run, tempDir } from '../util.mjs';

async function workspacePackages() {
  const byName = new Map();
  for (const group of ['packages', 'apps']) {
    const base = group === 'apps' ? appsDir : path.join(repo, group);
    for (const name of await readdir(base)) {
      const dir = path.join(base, name);
      const pkg = JSON.parse(
        await readFile(path.join(dir, 'package.json'), 'utf8').catch(() => 'null'),
      );
      if (pkg) byName.set(pkg.name, { dir, pkg, folder: name });
    }
  }
  return byName;
}

/** The app and every workspace package reachable through `dependencies`. */
function closure(name, byName, seen = new Set()) {
  if (seen.has(name) || !byName.has(name)) return seen;
  seen.add(name);
  for (const dep of Object.keys(byName.get(name).pkg.dependencies ?? {}))
    closure(dep, byName, seen);
  return seen;
}

async function countPackages(modules) {
  let n = 0;
  for (const entry of await readdir(modules, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    if (entry.name.startsWith('@')) n += await countPackages(path.join(modules, entry.name));
    else n += 1 + (await countPackages(path.join(modules, entry.name, 'node_modules')));
  }
  return n;
}

/** Without the npm_* settings of a surrounding `pnpm run`, which would redirect pack and install. */
const cleanEnv = () =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm|pnpm)_/i.test(k)));

export async function installSize() {
  const env = cleanEnv();
  const byName = await workspacePackages();
  for (const app of ['file-worker', 'nats-fs-worker', 'mqtt-fs-worker', 'http-agent']) {
    const root = await tempDir(`jw-bench-install-${app}-`);
    const tarballs = path.join(root, 'tarballs');
    const pkgName = [...byName].find(([, p]) => p.folder === app && p.dir.startsWith(appsDir))?.[0];
    const names = [...closure(pkgName, byName)];
    for (const name of names) {
      await run('pnpm', ['pack', '--pack-destination', tarballs], {
        cwd: byName.get(name).dir,
        env,
      });
    }
    const files = (await readdir(tarballs)).map((f) => path.join(tarballs, f));
    const target = path.join(root, 'app');
    await run('mkdir', ['-p', target]);
    await writeFile(path.join(target, 'package.json'), '{"name":"consumer","private":true}');
    const npm = ['install', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error'];
    // Offline from npm's cache when it can; else from the registry.
    await run('npm', [...npm, '--offline', ...files], { cwd: target, env }).catch(() =>
      run('npm', [...npm, '--prefer-offline', ...files], { cwd: target, env }),
    );
    const { stdout } = await run('du', ['-sb', path.join(target, 'node_modules')]);
    const bytes = Number(stdout.split('\t')[0]);
    const packages = await countPackages(path.join(target, 'node_modules'));
    measure({
      name: `install size of ${app} (npm install of its tarballs)`,
      value: bytes / 1e6,
      unit: 'MB',
      goal: { atMost: 5 },
      note: `${packages} packages; tarballs: ${names.join(', ')}`,
    });
  }
}
