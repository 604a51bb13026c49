import { execFileSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '@jw/testing/fs';
import { spawnProcess } from '@jw/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const PACKAGES = [
  'packages/core',
  'packages/options',
  'packages/cli',
  'packages/transport-file',
  'apps/file-worker',
];

let box: Sandbox;
beforeAll(async () => {
  box = await createSandbox('jw-pack-');
});
afterAll(async () => {
  await box.cleanup();
});

describe('published packages', () => {
  it('pack, install outside the workspace, and run the file-worker binary', {
    timeout: 240_000,
  }, async () => {
    const tarballs = path.join(box.root, 'tarballs');
    for (const pkg of PACKAGES) {
      execFileSync('pnpm', ['pack', '--pack-destination', tarballs], {
        cwd: path.join(repo, pkg),
        stdio: 'pipe',
      });
    }
    const files = (await readdir(tarballs)).map((f) => path.join(tarballs, f));
    expect(files).toHaveLength(PACKAGES.length);
    const app = path.join(box.root, 'app');
    execFileSync('mkdir', ['-p', app]);
    await writeFile(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...files], {
      cwd: app,
      stdio: 'pipe',
    });

    const bin = path.join(app, 'node_modules/.bin/file-worker');
    expect(execFileSync(bin, ['--version'], { cwd: app }).toString().trim()).toBe('0.1.0');
    await writeFile(
      path.join(app, 'test-payload.json'),
      JSON.stringify({ id: 'packed', steps: ['echo from the packed worker'] }),
    );
    const run = spawnProcess(bin, ['--dry-run', '--log-level', 'warn'], { cwd: app });
    expect((await run.exited).code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ id: 'packed', status: 'success' });

    // The library is importable on its own, with its JSON Schema.
    await writeFile(
      path.join(app, 'use-core.mjs'),
      "import { isValidJobId } from '@jw/core'; import { createRequire } from 'node:module';\n" +
        "const schema = createRequire(import.meta.url)('@jw/core/job.schema.json');\n" +
        "console.log(isValidJobId('../x'), isValidJobId('ok'), schema.type);\n",
    );
    expect(execFileSync(process.execPath, ['use-core.mjs'], { cwd: app }).toString().trim()).toBe(
      'false true object',
    );

    // A transport's flags are published for workers of one's own.
    await writeFile(
      path.join(app, 'use-flags.mjs'),
      "import { fileQueueOptions } from '@jw/transport-file/flags';\n" +
        'console.log(fileQueueOptions.queueDir.flags, fileQueueOptions.pollInterval.type);\n',
    );
    expect(execFileSync(process.execPath, ['use-flags.mjs'], { cwd: app }).toString().trim()).toBe(
      '-q, --queue-dir <dir> duration',
    );
  });
});
