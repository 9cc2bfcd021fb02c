#!/usr/bin/env node
// Build mcp-server/dist:
//   server.cjs, cli.cjs, hook.cjs   the server, the CLI and the Claude Code hooks, each one bundled CommonJS file (one file to parse, and a file
//                         V8 can code-cache: see mcp-server/src/launcher.ts)
//   loki-mcp.js, loki.js  the bins: tiny launchers that run those bundles through the code cache
//   loki-hook.cjs         the hooks' launcher, CommonJS: a host starts one per tool call, and Node's ES module loader
//                         alone costs several milliseconds of each start (bench/NOTES.md)
//   index.js              the library entry (ESM): createServer and the storage primitives
//   demo.mjs              scripts/demo.mjs with the MCP SDK client bundled in, for `loki demo` from the package
//   dashboard/            the dashboard's page (mcp-server/ui/: Preact, bundled for browsers), served by `loki dashboard`
// LOKI_NO_MINIFY=1 keeps names readable (for CPU profiles of the bundles). LOKI_SOURCEMAP=1 writes source maps next
// to the bundles; by default there are none, so the package (which ships dist/) stays small: the maps were three
// quarters of it. index.js is built for the tests and for embedding from a checkout; the package leaves it out
// (package.json "files"), as it is the server bundle again.
import { build } from 'esbuild';
import fs from 'node:fs';
import { BUILTIN_HELPERS, englishOnlyZod, rewriteBuiltins, withoutAjv } from './bundle-options.mjs';

const outdir = 'mcp-server/dist';
const version = JSON.parse(fs.readFileSync('package.json', 'utf8')).version;
fs.rmSync(outdir, { recursive: true, force: true });

// The CommonJS bundles share one copy of the `yaml` package, dist/yaml.cjs, required when a config.yaml or a
// frontmatter block is first read (domain/yaml.ts, config/frontmatter.ts): it was 112 KB of each of five bundles
// that every start reads, most of which never parse YAML, and a third of the package.
const sharedYaml = {
  name: 'shared-yaml',
  setup(b) {
    b.onResolve({ filter: /^yaml$/ }, () => ({ path: './yaml.cjs', external: true }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  minify: !process.env.LOKI_NO_MINIFY,
  sourcemap: process.env.LOKI_SOURCEMAP === '1' ? 'linked' : false,
  legalComments: 'linked',
  define: { __LOKI_VERSION__: JSON.stringify(version) },
  logLevel: 'warning',
  plugins: [englishOnlyZod],
};

await Promise.all([
  // The dashboard's page: one script and one style sheet for browsers, beside its HTML.
  build({
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    minify: !process.env.LOKI_NO_MINIFY,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryPoints: { app: 'mcp-server/ui/main.tsx' },
    outdir: `${outdir}/dashboard`,
  }).then(() => {
    fs.copyFileSync('mcp-server/ui/index.html', `${outdir}/dashboard/index.html`);
    fs.copyFileSync('mcp-server/ui/app.css', `${outdir}/dashboard/app.css`);
  }),
  build({
    ...common,
    format: 'cjs',
    entryPoints: {
      server: 'mcp-server/src/bin/server-main.ts',
      cli: 'mcp-server/src/bin/cli-main.ts',
      'loki-hook': 'mcp-server/src/bin/loki-hook.ts',
      hook: 'mcp-server/src/bin/hook-main.ts',
      'hook-guard': 'mcp-server/src/bin/hook-guard-main.ts',
      'hook-usage': 'mcp-server/src/bin/hook-usage-main.ts',
    },
    outdir,
    outExtension: { '.js': '.cjs' },
    alias: withoutAjv,
    plugins: [...common.plugins, sharedYaml],
    // CommonJS has no import.meta; give the sources that read import.meta.url the bundle's own URL.
    define: { ...common.define, 'import.meta.url': '__lokiImportMetaUrl' },
    banner: {
      js: `const __lokiImportMetaUrl = require('node:url').pathToFileURL(__filename).href; ${BUILTIN_HELPERS}`,
    },
  }),
  // The `yaml` package as the CommonJS bundles require it (see sharedYaml).
  build({
    ...common,
    format: 'cjs',
    entryPoints: { yaml: 'yaml' },
    outdir,
    outExtension: { '.js': '.cjs' },
    // Every .cjs file goes through rewriteBuiltins below, which calls these helpers.
    banner: { js: BUILTIN_HELPERS },
  }),
  build({
    ...common,
    format: 'esm',
    entryPoints: { 'loki-mcp': 'mcp-server/src/bin/loki-mcp.ts', loki: 'mcp-server/src/bin/loki.ts' },
    outdir,
    sourcemap: false,
  }),
  // `loki demo` from the package: the demo drives the server through the MCP SDK's client, which the package
  // does not depend on, so it ships bundled. Its paths are read from where scripts/demo.mjs would be.
  build({
    ...common,
    format: 'esm',
    sourcemap: false,
    entryPoints: { demo: 'scripts/demo.mjs' },
    outdir,
    // Its client is given its own validator (loki's tools declare no output schema): Ajv stays out.
    alias: withoutAjv,
    outExtension: { '.js': '.mjs' },
    define: { ...common.define, 'import.meta.url': '__lokiDemoUrl' },
    banner: {
      js: "import { createRequire as __lokiCreateRequire } from 'node:module'; const require = __lokiCreateRequire(import.meta.url); const __lokiDemoUrl = new URL('../../scripts/demo.mjs', import.meta.url).href;",
    },
  }),
  build({
    ...common,
    format: 'esm',
    entryPoints: { index: 'mcp-server/src/index.ts' },
    outdir,
    alias: withoutAjv,
    // Bundled CommonJS dependencies call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __lokiCreateRequire } from 'node:module'; const require = __lokiCreateRequire(import.meta.url);",
    },
  }),
]);
for (const file of fs.readdirSync(outdir).filter((f) => f.endsWith('.cjs')))
  fs.writeFileSync(`${outdir}/${file}`, rewriteBuiltins(file, fs.readFileSync(`${outdir}/${file}`, 'utf8')));
// A bundle with a single character beyond ASCII is read by Node as a two-byte string: the server's 1 MB bundle then
// took 13-16 ms to read instead of about 3, and V8 scans and compiles it more slowly, on every start. esbuild escapes
// strings and identifiers but leaves regular expression literals as written: write those with \u escapes.
// (An unminified build keeps comments, which may hold any character: it is for profiles, not shipped.)
for (const file of fs.readdirSync(outdir).filter((f) => !process.env.LOKI_NO_MINIFY && /\.(c?js|mjs)$/.test(f))) {
  const text = fs.readFileSync(`${outdir}/${file}`, 'utf8');
  const at = text.search(/[\u0080-\uffff]/);
  if (at >= 0)
    throw new Error(
      `${file}: a character beyond ASCII near ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}; escape it (\\uXXXX) in the source`,
    );
}
for (const bin of ['loki-mcp.js', 'loki.js', 'loki-hook.cjs']) fs.chmodSync(`${outdir}/${bin}`, 0o755);
