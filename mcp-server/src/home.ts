import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `~/.loki` (or LOKI_HOME): cross-project learnings, the external audit anchors, held-out sets and the code cache. */
export function lokiHomeDir(env: NodeJS.ProcessEnv): string {
  return env.LOKI_HOME && env.LOKI_HOME.trim() !== '' ? path.resolve(env.LOKI_HOME) : path.join(os.homedir(), '.loki');
}

/** A project's own name under `$LOKI_HOME/<area>/`: a digest of its canonical root (nothing of the path shows). */
export function projectKey(projectRoot: string): string {
  return crypto.createHash('sha256').update(projectRoot).digest('hex').slice(0, 32);
}

/** Folders under $LOKI_HOME already made by this process (an anchor is written after every commit). */
const madeDirs = new Set<string>();
const privateHomes = new Set<string>();

/**
 * Make `$LOKI_HOME` private to the user (0700), once per process: it holds the audit anchors, held-out sets and
 * cross-project learnings. A folder made wider by something else (an older version, a umask of 022) is narrowed;
 * one that belongs to another user is left alone (its owner decides).
 */
export function makeHomePrivate(lokiHome: string): void {
  if (privateHomes.has(lokiHome)) return;
  fs.mkdirSync(lokiHome, { recursive: true, mode: 0o700 });
  const st = fs.statSync(lokiHome);
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) fs.chmodSync(lokiHome, 0o700);
  privateHomes.add(lokiHome);
}

/**
 * Make `dir`, a folder under `$LOKI_HOME`, 0700, once per process. `again`: a write found it gone since this process
 * made it; it is made once more (true), or was already made again (false: give up).
 */
export function makePrivateDir(lokiHome: string, dir: string, again = false): boolean {
  if (again && !madeDirs.delete(dir)) return false;
  if (madeDirs.has(dir)) return true;
  makeHomePrivate(lokiHome);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  madeDirs.add(dir);
  return true;
}

/**
 * Replace a file kept under `$LOKI_HOME` (temp + rename, 0600 in 0700 folders): private to the user, and a reader
 * sees the old content or the new, never half.
 */
export function replacePrivateFile(lokiHome: string, file: string, text: string): void {
  const dir = path.dirname(file);
  makePrivateDir(lokiHome, dir);
  const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // The folder was removed since this process made it: make it again, once.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !makePrivateDir(lokiHome, dir, true)) throw err;
    return replacePrivateFile(lokiHome, file, text);
  }
  fs.renameSync(temp, file);
}
