import { defineConfig } from 'tsup';
import { binary, library } from '../../tsup.shared.js';

export default defineConfig([
  library(),
  // The `jw` binary; a separate build so only it gets the shebang.
  binary({ main: 'src/main.ts' }, false),
]);
