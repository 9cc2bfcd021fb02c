// What every bundle of loki-mode is built with, beyond esbuild's options: the stubs of packages the bundles never
// call, zod's English-only locales, and the rewrite of builtin imports. scripts/build.mjs builds the product with
// them; bench/run.mjs builds the MCP SDK's cold-start floor (bench/sdk-floor.mjs) with them too, so the two compare.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STUBS = fileURLToPath(new URL('../mcp-server/src/bundle-stubs/', import.meta.url));
const stub = (file) => path.join(STUBS, file);

// See mcp-server/src/bundle-stubs/unavailable.ts.
export const withoutAjv = {
  ajv: stub('unavailable.ts'),
  'ajv-formats': stub('unavailable.ts'),
  // See mcp-server/src/bundle-stubs/zod-v3.ts.
  'zod/v3': stub('zod-v3.ts'),
  'zod-to-json-schema': stub('zod-v3.ts'),
  // See mcp-server/src/bundle-stubs/js-yaml.ts.
  'js-yaml': stub('js-yaml.ts'),
};

// See mcp-server/src/bundle-stubs/zod-locales.ts.
export const englishOnlyZod = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}zod${path.sep}`) ? { path: stub('zod-locales.ts') } : undefined,
    );
  },
};

// esbuild turns each `import fs from 'node:fs'` of the sources into __toESM(require('node:fs')), which copies every
// export of the module into a new object, once per importing file: about 10 ms of every start of a bundle. A
// builtin needs no such interop: an object whose prototype is the module, with `default` set, reads the same.
// (The source maps' columns are off on the rewritten declaration lines only.)
const builtinImport = /([\w$]+)\(require\("(node:[a-z_/]+)"\), ?1\)/g;
// Builtins that cost milliseconds to load and that most starts never use: a hook that only reads the run needs no
// hashing and spawns nothing, yet node:crypto (with the streams it pulls in) and node:child_process (with net) were
// about 10 ms of each hook's start (bench/NOTES.md). They are loaded on the first use of one of their exports.
const LAZY_BUILTINS = new Set(['node:crypto', 'node:child_process']);
const lazyRequire = /(?<![\w$.])require\("(node:crypto|node:child_process)"\)/g;

/** The helpers rewriteBuiltins' output calls: put them in the banner of every CommonJS bundle it rewrites. */
export const BUILTIN_HELPERS =
  "const __lokiBuiltin = (m) => ({ __proto__: m, default: m }); const __lokiLazy = (id) => { let m; const load = () => (m ??= require(id)); return new Proxy({}, { get: (_, k) => (k === 'default' ? load() : load()[k]), has: (_, k) => k === 'default' || k in load() }); };";

/** A CommonJS bundle's text with its builtin imports rewritten as above (`file` names it in an error). */
export function rewriteBuiltins(file, text) {
  // Minified, __toESM has a short name: every match must call the same function, or the rewrite is not safe.
  const helpers = new Set([...text.matchAll(builtinImport)].map((m) => m[1]));
  if (helpers.size > 1)
    throw new Error(`${file}: builtin imports go through ${[...helpers].join(', ')}; expected only esbuild's __toESM`);
  return text
    .replace(builtinImport, (_, _helper, id) =>
      LAZY_BUILTINS.has(id) ? `__lokiLazy("${id}")` : `__lokiBuiltin(require("${id}"))`,
    )
    .replace(lazyRequire, '__lokiLazy("$1")');
}
