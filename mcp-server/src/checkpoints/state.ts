/**
 * The `.loki/` run state of a checkpoint: capture (a manifest of files plus content-addressed copies under
 * `.loki/checkpoints/objects/`), verification, and restore. Every file is reached through the store's validated
 * directory; symlinks and special files are never followed or captured. Callers hold the state and queue locks,
 * so the files do not change underneath.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { diffState, inStateScope, stateDigestText, type ChangeSet, type StateEntry } from '../domain/checkpoints.js';
import { CHANGE_FEED, QUEUE_DIR } from '../queue/records.js';
import { faultPoint } from '../store/fault.js';
import { fsyncDir, readFileIfExists, removeFile, writeFileAtomic } from '../store/fsx.js';
import { PathError, splitRelativePath } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { blobFile } from './records.js';

const MAX_STATE_FILE_BYTES = 64 * 1024 * 1024;

export interface ScannedState {
  entries: StateEntry[];
  digest: string;
  bytes: number;
  /** Contents read during this scan, by sha256 (files whose hash came from the stat cache are not here). */
  contents: Map<string, Buffer>;
  /** Paths left out: symlinks, special files, names the path validator refuses. */
  skipped: string[];
}

interface CachedHash {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
}

/** Hashes of files not changed since they were last read (inode, size, mtime and ctime all equal), per process. */
const hashCache = new Map<string, CachedHash>();

export const sha256Of = (data: Buffer | string): string => crypto.createHash('sha256').update(data).digest('hex');

/** The captured part of `.loki/` as it is now. */
export function scanState(store: Store): ScannedState {
  const entries: StateEntry[] = [];
  const contents = new Map<string, Buffer>();
  const skipped: string[] = [];
  const walk = (dirAbs: string, dirRel: string) => {
    for (const d of fs.readdirSync(dirAbs, { withFileTypes: true })) {
      const rel = dirRel ? `${dirRel}/${d.name}` : d.name;
      if (!inStateScope(rel)) continue;
      try {
        splitRelativePath(rel);
      } catch {
        skipped.push(rel);
        continue;
      }
      const abs = path.join(dirAbs, d.name);
      if (d.isDirectory()) walk(store.loki.resolve(rel, { leaf: 'dir' }).absolute, rel);
      else if (d.isFile()) {
        const entry = hashFile(store, rel, abs, contents);
        if (entry) entries.push(entry);
      } else skipped.push(rel);
    }
  };
  walk(store.loki.root, '');
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { entries, digest: sha256Of(stateDigestText(entries)), bytes: entries.reduce((n, e) => n + e.size, 0), contents, skipped };
}

function hashFile(store: Store, rel: string, abs: string, contents: Map<string, Buffer>): StateEntry | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return undefined;
  }
  const cached = hashCache.get(abs);
  if (cached && cached.ino === st.ino && cached.size === st.size && cached.mtimeMs === st.mtimeMs && cached.ctimeMs === st.ctimeMs) {
    return { path: rel, sha256: cached.sha256, size: cached.size };
  }
  const data = readFileIfExists(store.loki, rel, MAX_STATE_FILE_BYTES);
  if (!data) return undefined;
  const sha = sha256Of(data);
  contents.set(sha, data);
  hashCache.set(abs, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, sha256: sha });
  return { path: rel, sha256: sha, size: data.length };
}

/** Copy every file of a scan that the object store lacks into it (durably, before any record names it). */
export function storeBlobs(store: Store, scan: ScannedState): void {
  const dirs = new Set<string>();
  for (const e of scan.entries) {
    const rel = blobFile(e.sha256);
    if (blobPresent(store, rel)) continue;
    const data = scan.contents.get(e.sha256) ?? readFileIfExists(store.loki, e.path, MAX_STATE_FILE_BYTES);
    if (!data || sha256Of(data) !== e.sha256) {
      throw new Error(`internal: .loki/${e.path} changed while a checkpoint was being taken (the state lock should prevent this)`);
    }
    writeFileAtomic(store.loki, rel, data, { deferDirSync: true });
    dirs.add(path.dirname(path.join(store.loki.root, rel)));
  }
  for (const d of dirs) fsyncDir(d);
  if (dirs.size > 0) fsyncDir(path.join(store.loki.root, 'checkpoints', 'objects'));
}

function blobPresent(store: Store, rel: string): boolean {
  try {
    return store.loki.resolve(rel, { leaf: 'file' }).stat!.isFile();
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return false;
    throw err;
  }
}

/** A stored copy, checked against its hash; undefined when it is missing or damaged. */
export function readBlob(store: Store, sha: string): Buffer | undefined {
  const data = readFileIfExists(store.loki, blobFile(sha), MAX_STATE_FILE_BYTES);
  return data && sha256Of(data) === sha ? data : undefined;
}

/** Why the stored state of a manifest cannot be restored, or null. Reads and hashes every copy. */
export function stateProblem(store: Store, entries: readonly StateEntry[]): string | null {
  const bad = entries.filter((e) => readBlob(store, e.sha256) === undefined);
  if (bad.length === 0) return null;
  return `${bad.length} stored state file(s) are missing or damaged (e.g. .loki/${bad[0]!.path})`;
}

/**
 * Make the captured part of `.loki/` equal to `target`: write what differs, remove what the checkpoint did not
 * have, and restart the queue's change feed so every process reloads its view. Safe to repeat after a crash.
 */
export function restoreState(store: Store, target: readonly StateEntry[]): ChangeSet {
  const now = scanState(store);
  const changes = diffState(now.entries, target);
  const bySha = new Map(target.map((e) => [e.path, e.sha256]));
  const dirs = new Set<string>();
  try {
    for (const p of [...changes.added, ...changes.modified]) {
      const data = readBlob(store, bySha.get(p)!);
      if (!data) throw new Error(`the stored copy of .loki/${p} is missing or damaged`);
      writeFileAtomic(store.loki, p, data, { deferDirSync: true });
      dirs.add(path.dirname(path.join(store.loki.root, p)));
      faultPoint('rollback-state-file');
    }
    for (const p of changes.removed) {
      removeFile(store.loki, p, false);
      dirs.add(path.dirname(path.join(store.loki.root, p)));
    }
    for (const d of dirs) fsyncDir(d);
  } finally {
    // The feed is a hint; a new (empty) file tells every process to reload the queue from the task files. Also
    // when the restore stopped half way: task files it did write are announced by nothing else.
    if (store.exists(QUEUE_DIR)) writeFileAtomic(store.loki, CHANGE_FEED, '');
  }
  return changes;
}
