// `--version` alone answers before the app and its parser are loaded (issue 14).
import { versionOnly } from '@jw/cli/version';
import pkg from '../package.json' with { type: 'json' };

if (!versionOnly(pkg.version)) await import('./app.js');
