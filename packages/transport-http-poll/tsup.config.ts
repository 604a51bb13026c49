import { defineConfig } from 'tsup';
import { binary, library } from '../../tsup.shared.js';

export default defineConfig([
  library({
    index: 'src/index.ts',
    flags: 'src/flags.ts',
    'backend/index': 'src/backend/index.ts',
  }),
  // The reference backend's binary; a separate build so only it gets the shebang.
  binary({ 'backend/main': 'src/backend/main.ts' }, false),
]);
