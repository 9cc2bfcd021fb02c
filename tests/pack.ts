/**
 * `npm pack` of this checkout into `dest`, without running the build (the suite builds first). Other processes
 * may be rebuilding dist/ at the same moment (the build empties it first), so a tarball missing a bundle is
 * packed again after a pause rather than failing a test on a half-written dist.
 */
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './helpers.js';

export interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

const NEEDED = [
  'loki-mcp.js',
  'loki.js',
  'server.cjs',
  'cli.cjs',
  'loki-hook.cjs',
  'hook.cjs',
  'yaml.cjs',
  'demo.mjs',
].map((f) => `mcp-server/dist/${f}`);

export function packRepo(dest: string): Packed {
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) spawnSync('sleep', ['2']);
    const r = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      last = r.stderr;
      continue;
    }
    const packed = (JSON.parse(r.stdout) as Packed[])[0]!;
    const files = new Set(packed.files.map((f) => f.path));
    const missing = NEEDED.filter((f) => !files.has(f));
    if (missing.length === 0) return packed;
    last = `the tarball lacks ${missing.join(', ')} (dist/ being rebuilt?)`;
  }
  throw new Error(`npm pack failed: ${last}`);
}
