/**
 * The page, its script and its style sheet (built from mcp-server/ui/ by scripts/build.mjs into
 * dist/dashboard/), read once at start. From the bundle they sit beside it; from the sources (tests, a
 * checkout) the built copy in mcp-server/dist/dashboard/ is used.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  type: string;
  body: Uint8Array<ArrayBuffer>;
}

export interface Assets {
  dir: string | null;
  get(name: string): Asset | undefined;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export const ASSET_NAMES = ['index.html', 'app.js', 'app.css'] as const;

export function assetsDir(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const dir of [path.join(here, 'dashboard'), path.join(here, '..', '..', 'dist', 'dashboard')])
    if (fs.existsSync(path.join(dir, 'index.html'))) return dir;
  return null;
}

export function loadAssets(dir = assetsDir()): Assets {
  const files = new Map<string, Asset>();
  if (dir)
    for (const name of ASSET_NAMES) {
      try {
        files.set(name, {
          type: TYPES[path.extname(name)]!,
          body: new Uint8Array(fs.readFileSync(path.join(dir, name))),
        });
      } catch {
        // Missing: the route says the page is not built.
      }
    }
  return { dir, get: (name) => files.get(name) };
}
