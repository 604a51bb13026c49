import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// `errors` alone is light (no zod, no execa): option parsing at start-up imports only it.
export default defineConfig(library(['src/index.ts', 'src/errors.ts']));
