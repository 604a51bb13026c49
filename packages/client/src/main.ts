import pkg from '../package.json' with { type: 'json' };
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), pkg.version);
// Let piped output drain before leaving; open sockets must not keep `jw` alive.
process.stdout.write('', () => process.exit(code));
