/**
 * Start a bundled CommonJS entry with Node's module compile cache on (module.enableCompileCache): compiling the
 * bundle is a large part of each start-up, and a host starts a hook process per tool call. The cache lives in
 * `$LOKI_HOME/cache` (0700), never in a shared temporary folder another local user could write code into.
 * A missing or stale cache only costs the normal compile; LOKI_NO_CODE_CACHE=1 turns it off.
 */
import fs from 'node:fs';
import module, { createRequire } from 'node:module';
import path from 'node:path';
import { lokiHomeDir } from './home.js';

export function runBundle(bundle: string): void {
  // A dry run (`loki install --dry-run`) promises to write nothing anywhere, the compile cache included.
  if (process.env.LOKI_NO_CODE_CACHE !== '1' && !process.argv.includes('--dry-run')) {
    try {
      const dir = path.join(lokiHomeDir(process.env), 'cache');
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Only a folder that is ours alone: code cached by someone else would run as us.
      const st = fs.lstatSync(dir);
      if (st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0) module.enableCompileCache(dir);
    } catch {
      /* a read-only home only means no cache */
    }
  }
  createRequire(bundle)(bundle);
}
