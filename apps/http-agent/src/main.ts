// The bin, built as CommonJS (`dist/main.cjs`): `--version` alone answers before the app
// and its parser are loaded, and the app is `require()`d, not `await import()`ed, which
// costs an idle worker 4 MiB of RSS (issue 14; docs/decisions.md).
import { versionOnly } from '@jw/cli/version';
import pkg from '../package.json' with { type: 'json' };

if (!versionOnly(pkg.version)) require('./app.js');
