import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// `flags` is light (no broker client): binaries parse their settings before loading the transport.
export default defineConfig(library(['src/index.ts', 'src/flags.ts']));
