import { dirname, resolve } from 'node:path';
import type { Options } from 'tsup';

/** A library: ESM with bundled `.d.ts`, for Node 20. */
export function library(entry: Options['entry'] = ['src/index.ts']): Options {
  return { entry, format: ['esm'], dts: true, clean: true, sourcemap: true, target: 'node20' };
}

const SHEBANG = '#!/usr/bin/env node';

/**
 * A binary: ESM with a shebang and every dependency bundled in, so installing it
 * pulls no packages (issue 14: a worker installs in ≤ 5 MB). Lazy `import()`s
 * become chunks beside it (tsup splits ESM by default), so they stay lazy.
 * `bundle: false` keeps the dependencies external (a library's own helper binary).
 */
export function binary(
  entry: Options['entry'] = ['src/main.ts'],
  clean = true,
  bundle = true,
): Options {
  if (!bundle) {
    return {
      entry,
      format: ['esm'],
      clean,
      sourcemap: true,
      target: 'node20',
      banner: { js: SHEBANG },
    };
  }
  return {
    entry,
    format: ['esm'],
    clean,
    // No source map: of a bundle it would weigh more than the code itself.
    sourcemap: false,
    target: 'node20',
    platform: 'node',
    noExternal: [/.*/],
    // __dirname and __filename for the CommonJS dependencies, injected where used.
    shims: true,
    banner: {
      // Bundled CommonJS (pino, mqtt, ...) calls require() for Node's built-ins; esbuild's
      // shim forwards to a `require` in scope. Named imports cannot clash with bundled code.
      js: [
        SHEBANG,
        "import { createRequire as __jwCreateRequire } from 'node:module';",
        'const require = __jwCreateRequire(import.meta.url);',
      ].join('\n'),
    },
  };
}

const CORE_SRC = new URL('./packages/core/src/', import.meta.url).pathname;

/**
 * For a binary: `@jw/core` resolves to its light entry in source (`src/light.ts`, no step
 * runner), `@jw/core/errors` to the same source, so one `JwError` class serves both. From
 * source, esbuild keeps the job path (`runJob`: execa) in the chunk the worker loop
 * imports with the first job; core's built index re-exports it, which would pull it in at
 * start (issue 14: idle RSS).
 */
export const lightCore: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'light-core',
  setup(build) {
    build.onResolve({ filter: /^@jw\/core(\/errors)?$/ }, (args) => ({
      path: `${CORE_SRC}${args.path.endsWith('/errors') ? 'errors.ts' : 'light.ts'}`,
    }));
  },
};

/**
 * For a binary: zod's `locales` namespace (every language's error messages, 300 KB of
 * source) becomes one holding English only. Zod's schemas import `en` directly and no
 * binary picks another language, yet the bundle compiled them all at start (a cold-start
 * profile: the zod chunk took 136–160 ms to import; issue 14).
 */
export const englishOnlyZod: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'english-only-zod',
  setup(build) {
    build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]zod[\\/]/.test(args.importer)) return undefined;
      return { path: resolve(args.resolveDir, args.path), namespace: 'zod-en-only' };
    });
    build.onLoad({ filter: /.*/, namespace: 'zod-en-only' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

/** Keeps `./app.js` a `require()` of the app built beside the entry. */
const appExternal: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'app-external',
  setup(build) {
    build.onResolve({ filter: /^\.\/app\.js$/ }, (args) => ({ path: args.path, external: true }));
  },
};

/**
 * A worker binary: the app (`src/app.ts`) as an ESM bundle (`dist/app.js` and its chunks),
 * and the bin `dist/main.cjs`, a CommonJS entry of a few lines that answers `--version`
 * and otherwise `require()`s the app (require of ESM: Node ≥ 20.19, the app has no
 * top-level await). An ESM entry had to `await import()` the app to stay this small, and
 * that cost the idle NATS worker 4 MiB of RSS; a static import loses the fast `--version`
 * (issue 14; docs/decisions.md).
 *
 * `light`: core's light entry (`lightCore`), and whitespace minified. Node keeps every
 * loaded module's source in memory, as a two-byte string when it holds one character past
 * Latin-1 (an em dash in a bundled library's comment does it): stripping comments and
 * indentation took the NATS worker's loaded sources from 2.9 to 1.0 MB of heap. Names are
 * kept, so stack traces still read.
 */
export function workerBinary(light = false): Options[] {
  const app: Options = {
    ...binary({ app: 'src/app.ts' }),
    // Both builds run at once: this one's clean must not take the entry away.
    clean: ['!main.cjs'],
    ...(light ? { esbuildPlugins: [lightCore, englishOnlyZod], minifyWhitespace: true } : {}),
  };
  const entry: Options = {
    entry: { main: 'src/main.ts' },
    format: ['cjs'],
    clean: false,
    sourcemap: false,
    target: 'node20',
    platform: 'node',
    noExternal: [/.*/],
    esbuildPlugins: [appExternal],
    banner: { js: SHEBANG },
  };
  return [app, entry];
}
