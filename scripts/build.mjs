#!/usr/bin/env node
// Bundle the server, the CLI and the library entry into single ESM files: one file to parse makes start-up
// about twice as fast as resolving hundreds of modules (research/reliability-perf.md §B1).
import { build } from 'esbuild';
import fs from 'node:fs';

const outdir = 'mcp-server/dist';
fs.rmSync(outdir, { recursive: true, force: true });
const version = JSON.parse(fs.readFileSync('package.json', 'utf8')).version;

await build({
  entryPoints: {
    'loki-mcp': 'mcp-server/src/bin/loki-mcp.ts',
    loki: 'mcp-server/src/bin/loki.ts',
    index: 'mcp-server/src/index.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  define: { __LOKI_VERSION__: JSON.stringify(version) },
  // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __lokiCreateRequire } from 'node:module'; const require = __lokiCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
for (const bin of ['loki-mcp.js', 'loki.js']) fs.chmodSync(`${outdir}/${bin}`, 0o755);
