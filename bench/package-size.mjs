// The npm package and the Claude Code plugin as users get them: `npm pack` of the built checkout (packed and
// unpacked size, files, runtime dependencies) and the bytes of plugin/ with its links followed (what Claude Code
// copies into its plugin cache). Issue 22's figures before the change are kept for comparison.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIMIT = 1024 * 1024;

function bytesUnder(dir) {
  let total = 0;
  for (const rel of fs.readdirSync(dir, { recursive: true })) {
    const st = fs.statSync(path.join(dir, rel));
    if (st.isFile()) total += st.size;
  }
  return total;
}

const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
const mb = (n) => `${(n / (1024 * 1024)).toFixed(2)} MB`;

export function packageSection() {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const packed = JSON.parse(r.stdout)[0];
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const deps = Object.keys(pkg.dependencies ?? {}).length;
  const maps = packed.files.filter((f) => f.path.endsWith('.map')).length;
  const plugin = bytesUnder(path.join(ROOT, 'plugin'));
  const largest = [...packed.files]
    .sort((a, b) => b.size - a.size)
    .slice(0, 5)
    .map((f) => `${f.path.replace('mcp-server/dist/', '')} ${kb(f.size)}`)
    .join(', ');
  return `<!-- package:begin -->
## The package and the plugin

Measured ${new Date().toISOString().slice(0, 10)} by \`node bench/run.mjs --only package\` (also part of the full run): \`npm pack\`
of the built checkout, and plugin/ with its links followed (what Claude Code copies into its plugin cache).

| figure | target | measured | |
|---|---|---|---|
| npm pack, packed | < 1 MB | ${kb(packed.size)} (${packed.entryCount} files; largest: ${largest}) | ${packed.size < LIMIT ? 'met' : 'NOT met'} |
| npm pack, unpacked | - | ${mb(packed.unpackedSize)} | - |
| source maps in the package | none | ${maps} | ${maps === 0 ? 'met' : 'NOT met'} |
| runtime dependencies | none (the bundles load only Node built-ins) | ${deps} | ${deps === 0 ? 'met' : 'NOT met'} |
| Claude Code plugin copy | small | ${kb(plugin)} | - |

Before issue 22: 3.7 MB packed, 14 MB unpacked (source maps and the server bundle twice), 111 packages (46 MB)
installed with it, and a plugin copy of the whole checkout (390 MB with node_modules; 1.4 GB once Claude Code
ran \`npm ci\` in it).
<!-- package:end -->
`;
}
