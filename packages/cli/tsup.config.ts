import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// `app` is the light entry of worker binaries; the worker half is a lazy chunk of both.
// `version-only` is what a binary's entry loads before anything else.
export default defineConfig(library(['src/index.ts', 'src/app.ts', 'src/version-only.ts']));
