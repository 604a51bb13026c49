import { defineConfig } from 'tsup';
import { library } from '../../tsup.shared.js';

// `app` is the light entry of worker binaries; the worker half is a lazy chunk of both.
export default defineConfig(library(['src/index.ts', 'src/app.ts']));
