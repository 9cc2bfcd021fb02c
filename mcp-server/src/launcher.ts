/**
 * Start a bundled CommonJS entry through V8's code cache. Compiling the ~900 KB bundle is a large part of
 * start-up; with the cache (kept in $LOKI_HOME/cache, keyed by Node version and bundle) the server answers
 * `initialize` about a quarter sooner (bench/RESULTS.md). A missing, stale or rejected cache only costs the
 * normal compile; LOKI_NO_CODE_CACHE=1 turns it off.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire, Module } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { lokiHomeDir } from './home.js';

/** How long after start the cache is written: late enough to include what the first requests compiled. */
const WRITE_AFTER_MS = 1500;

export function runCached(bundle: string): void {
  const source = fs.readFileSync(bundle, 'utf8');
  const cacheFile = process.env.LOKI_NO_CODE_CACHE === '1' ? undefined : cachePath(bundle);
  let cachedData: Buffer | undefined;
  if (cacheFile) {
    try {
      cachedData = fs.readFileSync(cacheFile);
    } catch {
      cachedData = undefined;
    }
  }
  const wrapper = (Module as unknown as { wrap(s: string): string }).wrap(source);
  const script = new vm.Script(wrapper, { filename: bundle, cachedData });
  if (cacheFile && (!cachedData || script.cachedDataRejected)) scheduleCacheWrite(script, cacheFile);
  const run = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
  const mod = { exports: {} };
  run.call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, path.dirname(bundle));
}

/** Keyed by Node version, bundle location, size and mtime (no hashing on the hot path); V8 itself rejects a
 * cache that does not match the source, in which case it is rewritten. */
function cachePath(bundle: string): string {
  const st = fs.statSync(bundle);
  const key = crypto.createHash('sha256').update(`${process.version}\0${process.arch}\0${bundle}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 20);
  return path.join(lokiHomeDir(process.env), 'cache', `${path.basename(bundle)}-${key}.v8`);
}

function scheduleCacheWrite(script: vm.Script, cacheFile: string): void {
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    try {
      const dir = path.dirname(cacheFile);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const temp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(temp, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(temp, cacheFile);
    } catch {
      /* a read-only home only means no cache */
    }
  };
  setTimeout(write, WRITE_AFTER_MS).unref();
  process.once('exit', write);
}
