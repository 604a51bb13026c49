import type { Options } from 'tsup';

/** A library: ESM with bundled `.d.ts`, for Node 20. */
export function library(entry: Options['entry'] = ['src/index.ts']): Options {
  return { entry, format: ['esm'], dts: true, clean: true, sourcemap: true, target: 'node20' };
}

/** A binary: one ESM file with a shebang; its dependencies stay external. */
export function binary(entry: Options['entry'] = ['src/main.ts'], clean = true): Options {
  return {
    entry,
    format: ['esm'],
    clean,
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  };
}
