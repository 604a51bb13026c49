import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describeTransportConformance } from '@jw/conformance';
import { createSandbox, waitFor } from '@jw/testing/fs';
import { createFileTransport } from './file-transport.js';
import { queueDirs } from './queue-dirs.js';

describeTransportConformance('file', async () => {
  const sandbox = await createSandbox('jw-file-contract-');
  const q = queueDirs(path.join(sandbox.root, 'queue'));
  let sent = 0;
  const readJson = (file: string) => readFile(file, 'utf8').then(JSON.parse, () => undefined);
  return {
    sandbox,
    createTransport: () => createFileTransport({ queueDir: q.root, stableMs: 50, intervalMs: 100 }),
    async send(body) {
      const tmp = path.join(q.root, `.r${++sent}.tmp`);
      await writeFile(tmp, body);
      await rename(tmp, path.join(q.pending, `r${String(sent).padStart(3, '0')}.json`));
    },
    result: (id) => waitFor(() => readJson(path.join(q.results, `${id}.json`))),
    async deadLetter(raw) {
      await waitFor(async () => {
        const names = (await readdir(q.failed)).filter((n) => !n.endsWith('.reason'));
        const bodies = await Promise.all(
          names.map((n) => readFile(path.join(q.failed, n), 'utf8')),
        );
        return bodies.includes(raw);
      });
    },
    close: () => sandbox.cleanup(),
  };
});
