/**
 * The `.loki/` run state of a checkpoint: capture (which files, with their sha256) and restore. Every file is
 * reached through the store's validated directory; symlinks and special files are never followed or captured.
 *
 * A capture must be one consistent moment of the state, so it ends under the state and queue locks; but agents
 * working the queue wait while those are held, so most of the reading happens before, without them
 * (`prescanState`), and the locked part (`completeScan`) only reads what changed since: task files the queue's
 * change feed announced after the prescan began, and other files whose identity (inode, size, times) differs.
 * Hashes are cached per process by identity, as git's index does, and like git's index an identity is trusted
 * only when the file's change time is safely older than when it was read (a second write within one tick of
 * the file system's clock can keep size and times: see racyMs).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { diffState, inStateScope, stateDigestText, type ChangeSet, type StateEntry } from '../domain/checkpoints.js';
import { feedMark, restartFeed, writtenSince, type FeedMark } from '../queue/feed.js';
import { TASKS_DIR, taskFile } from '../queue/records.js';
import { faultPoint } from '../store/fault.js';
import { fsyncDir, readFileAndStat, removeFile, writeFileAtomic } from '../store/fsx.js';
import { PathError, splitRelativePath, type SafeDir } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { readStored } from './packs.js';
import type { StoredEntry } from './records.js';

const MAX_STATE_FILE_BYTES = 64 * 1024 * 1024;
/**
 * An identity is trusted only for files last changed this long before it was read: a tick of the kernel's
 * coarse clock (at most 10 ms) where file times have sub-second precision, two seconds where they are whole
 * seconds (FAT keeps two-second times).
 */
const racyMs = (st: { mtimeMs: number }): number => (st.mtimeMs % 1000 === 0 ? 2000 : 100);

export interface ScannedState {
  entries: StateEntry[];
  digest: string;
  bytes: number;
  /** Contents read during this scan, by sha256 (files whose hash came from the cache are not here). */
  contents: Map<string, Buffer>;
  /** Paths left out: symlinks, special files, names the path validator refuses. */
  skipped: string[];
  /** When the scan began (ms since the epoch): every file changed before then, less a clock tick, is as hashed. */
  startedAt: number;
  /** The identity of each captured file as hashed, by path (kept in the manifest for the next scan). */
  identities: Map<string, Identity>;
}

/** Which version of a file: inode, size and times (a rewrite changes at least one, see racyMs). */
export interface Identity {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** What a file was when it was hashed. */
interface Seen extends Identity {
  sha256: string;
}

/** Hashes of files not changed since they were last read, per process (see racyMs). */
const hashCache = new Map<string, Seen>();

export const sha256Of = (data: Buffer | string): string => crypto.createHash('sha256').update(data).digest('hex');

/**
 * What the newest checkpoint holds. A file's hash may be taken without reading it (from the cache, or from that
 * checkpoint when the file has not changed since it was scanned) only when its content is stored already.
 */
export interface ScanBase {
  has(sha256: string): boolean;
  /** The file as the newest checkpoint captured it (its identity then, when recorded). */
  previous(rel: string): ({ sha256: string; size: number } & Partial<Identity>) | undefined;
  /** When the newest checkpoint's scan began (ms since the epoch), if known. */
  readonly scannedAt: number | undefined;
}

/** Catch-up rounds from the feed before the locks are taken (each one shortens the locked part). */
const CATCH_UP_ROUNDS = 3;
/** Few enough changes to read under the locks. */
const CATCH_UP_ENOUGH = 16;

/** The first, unlocked part of a capture. */
export interface Prescan {
  startedAt: number;
  /** Where the change feed ended when the prescan began, if it could be told. */
  feed: FeedMark | undefined;
  files: Map<string, Seen>;
  contents: Map<string, Buffer>;
  skipped: string[];
  /** Files that changed while they were being read: read again under the locks. */
  unread: Set<string>;
}

/**
 * Read the state without the state and queue locks (files may change meanwhile: completeScan catches up). The
 * work is cut into slices of a few milliseconds with the event loop let through between them: in the process
 * that owns the queue, requests from the other agents keep being served while a checkpoint reads.
 */
export async function prescanState(store: Store, base: ScanBase): Promise<Prescan> {
  const pre: Prescan = { startedAt: Date.now(), feed: feedMark(store), files: new Map(), contents: new Map(), skipped: [], unread: new Set() };
  const hash = (at: Located) => {
    const rel = at.rel;
    try {
      const seen = hashFile(at, pre.contents, base, pre.startedAt, true);
      if (seen) pre.files.set(rel, seen);
      else pre.files.delete(rel);
      pre.unread.delete(rel);
    } catch {
      pre.unread.add(rel);
    }
  };
  const found: Located[] = [];
  walkState(store, '', undefined, pre.skipped, (at) => found.push(at));
  await inSlices(found, hash);
  // Task files written while we read: read them again, from the feed, until few are left for the locked part.
  for (let round = 0; round < CATCH_UP_ROUNDS && pre.feed; round++) {
    const next = feedMark(store);
    const ids = next && writtenSince(store, pre.feed, next);
    if (!ids) break;
    const tasks = folder(store, TASKS_DIR);
    if (tasks) await inSlices([...ids].map((id) => located(tasks, TASKS_DIR, `${id}.json`)), hash);
    pre.feed = next;
    if (ids.size <= CATCH_UP_ENOUGH) break;
  }
  return pre;
}

/** Longest stretch of prescan work without letting the event loop through. */
const SLICE_MS = 4;

async function inSlices<T>(items: readonly T[], work: (item: T) => void): Promise<void> {
  let sliceEnd = performance.now() + SLICE_MS;
  for (const item of items) {
    work(item);
    if (performance.now() >= sliceEnd) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceEnd = performance.now() + SLICE_MS;
    }
  }
}

/**
 * Under the state and queue locks: the state now, from a prescan. `recovered`: the queue lock was taken over from
 * a dead holder, whose last task writes may be unannounced; the feed is restarted (every process reloads its
 * queue view, as the queue itself does on a takeover) and the task files are all looked at.
 */
export function completeScan(store: Store, pre: Prescan, recovered: boolean, base: ScanBase): ScannedState {
  const files = new Map<string, Seen>();
  const contents = pre.contents;
  const skipped: string[] = [];

  const rehash = (at: Located) => {
    const seen = hashFile(at, contents, base, Date.now(), false);
    if (seen) files.set(at.rel, seen);
    else files.delete(at.rel);
  };
  // Everything but the task files: walked again; a file that kept its identity keeps its hash.
  walkState(store, '', TASKS_DIR, skipped, (at) => {
    const before = pre.files.get(at.rel);
    const st = before && !pre.unread.has(at.rel) && before.ctimeMs < pre.startedAt - racyMs(before) ? lstatQuietly(at.abs) : undefined;
    if (before && st && sameIdentity(before, st)) files.set(at.rel, before);
    else rehash(at);
  });
  // The task files: those the feed announced since the prescan began are read again; none else was written.
  if (recovered) restartFeed(store);
  const written = !recovered && pre.feed ? writtenSince(store, pre.feed) : undefined;
  if (written) {
    for (const [rel, seen] of pre.files) if (rel.startsWith(`${TASKS_DIR}/`)) files.set(rel, seen);
    const again = new Set([...[...written].map(taskFile), ...[...pre.unread].filter((rel) => rel.startsWith(`${TASKS_DIR}/`))]);
    const tasks = again.size > 0 ? folder(store, TASKS_DIR) : undefined;
    for (const rel of again) {
      const at = tasks && inStateScope(rel) ? located(tasks, TASKS_DIR, rel.slice(TASKS_DIR.length + 1)) : undefined;
      const st = at && lstatQuietly(at.abs);
      if (st && !st.isFile()) skipped.push(rel);
      if (st?.isFile()) rehash(at!);
      else files.delete(rel);
    }
    for (const rel of pre.skipped) if (rel.startsWith(`${TASKS_DIR}/`)) skipped.push(rel);
  } else {
    walkState(store, TASKS_DIR, undefined, skipped, rehash);
  }
  const entries = [...files].map(([rel, seen]) => ({ path: rel, sha256: seen.sha256, size: seen.size }));
  entries.sort((a, b) => (a.path < b.path ? -1 : 1));
  const needed = new Set(entries.map((e) => e.sha256));
  for (const sha of contents.keys()) if (!needed.has(sha)) contents.delete(sha);
  const identities = new Map([...files].map(([rel, seen]) => [rel, { ino: seen.ino, size: seen.size, mtimeMs: seen.mtimeMs, ctimeMs: seen.ctimeMs }]));
  return { entries, digest: sha256Of(stateDigestText(entries)), bytes: entries.reduce((n, e) => n + e.size, 0), contents, skipped, startedAt: pre.startedAt, identities };
}

/** The captured part of `.loki/` as it is now, all under the locks (a rollback's own view of the state). */
export function scanState(store: Store, base: ScanBase): ScannedState {
  const pre: Prescan = { startedAt: Date.now(), feed: undefined, files: new Map(), contents: new Map(), skipped: [], unread: new Set() };
  return completeScan(store, pre, false, base);
}

/** A file found in the state: its path under `.loki/`, its absolute path, and its folder, resolved and checked once. */
interface Located {
  rel: string;
  abs: string;
  dir: SafeDir;
  name: string;
}

const located = (dir: SafeDir, dirRel: string, name: string): Located => ({ rel: dirRel ? `${dirRel}/${name}` : name, abs: path.join(dir.root, name), dir, name });

/** A folder of `.loki/`, resolved through the validator; undefined when it is not there. */
function folder(store: Store, rel: string): SafeDir | undefined {
  try {
    return store.loki.child(rel, false);
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return undefined;
    throw err;
  }
}

/**
 * Call `visit` for every captured regular file under `.loki/<from>` (all of it for ''), leaving out the folder
 * `except`. Each folder is resolved through the validator once; symlinks, special files and names the validator
 * refuses go to `skipped`.
 */
function walkState(store: Store, from: string, except: string | undefined, skipped: string[], visit: (at: Located) => void): void {
  const walk = (dir: SafeDir, dirRel: string) => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dir.root, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const d of names) {
      const rel = dirRel ? `${dirRel}/${d.name}` : d.name;
      if (!inStateScope(rel) || rel === except) continue;
      try {
        splitRelativePath(d.name);
      } catch {
        skipped.push(rel);
        continue;
      }
      if (d.isDirectory()) {
        const sub = folder(store, rel);
        if (sub) walk(sub, rel);
      } else if (d.isFile()) visit(located(dir, dirRel, d.name));
      else skipped.push(rel);
    }
  };
  const start = from === '' ? store.loki : folder(store, from);
  if (start) walk(start, from);
}

/**
 * The hash of one file, from the cache when its identity is unchanged and its content is stored, else read
 * (`stable`: retried if it changes while read; throws if it keeps changing). Undefined when it is gone.
 * `readAt`: when the read began, for what the cache may keep (see racyMs).
 */
function hashFile(at: Located, contents: Map<string, Buffer>, base: ScanBase, readAt: number, stable: boolean): Seen | undefined {
  const { rel, abs } = at;
  const st = lstatQuietly(abs);
  if (!st) return undefined;
  const cached = hashCache.get(abs);
  if (cached && sameIdentity(cached, st) && base.has(cached.sha256)) return cached;
  const previous = base.scannedAt === undefined || !st.isFile() ? undefined : base.previous(rel);
  if (
    previous?.ino !== undefined &&
    sameIdentity({ ino: previous.ino, size: previous.size, mtimeMs: previous.mtimeMs!, ctimeMs: previous.ctimeMs! }, st) &&
    st.ctimeMs < base.scannedAt! - racyMs(st) &&
    base.has(previous.sha256)
  ) {
    // The very version the newest checkpoint hashed, changed safely before its scan began: as it captured it.
    const seen: Seen = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, sha256: previous.sha256 };
    hashCache.set(abs, seen);
    return seen;
  }
  const read = readFileAndStat(at.dir, at.name, MAX_STATE_FILE_BYTES, stable);
  if (!read) return undefined;
  const sha = sha256Of(read.data);
  contents.set(sha, read.data);
  const seen: Seen = { ino: read.stat.ino, size: read.data.length, mtimeMs: read.stat.mtimeMs, ctimeMs: read.stat.ctimeMs, sha256: sha };
  if (seen.ctimeMs < readAt - racyMs(seen)) hashCache.set(abs, seen);
  else hashCache.delete(abs);
  return seen;
}

function sameIdentity(a: Identity, st: fs.Stats): boolean {
  return a.ino === st.ino && a.size === st.size && a.mtimeMs === st.mtimeMs && a.ctimeMs === st.ctimeMs;
}

function lstatQuietly(abs: string): fs.Stats | undefined {
  try {
    // Gone is a normal answer here: no exception for it.
    return fs.lstatSync(abs, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** Why the stored state of a manifest cannot be restored, or null. Reads and hashes every stored content. */
export function stateProblem(store: Store, entries: readonly StoredEntry[]): string | null {
  const bad = entries.filter((e) => readStored(store, e) === undefined);
  if (bad.length === 0) return null;
  return `${bad.length} stored state file(s) are missing or damaged (e.g. .loki/${bad[0]!.path})`;
}

/** For a scan that only compares hashes (nothing is stored from it): any cached hash will do. */
const ANY_BASE: ScanBase = { has: () => true, previous: () => undefined, scannedAt: undefined };

/**
 * Make the captured part of `.loki/` equal to `target`: write what differs, remove what the checkpoint did not
 * have, and restart the queue's change feed so every process reloads its view. Safe to repeat after a crash.
 */
export function restoreState(store: Store, target: readonly StoredEntry[]): ChangeSet {
  const now = scanState(store, ANY_BASE);
  const changes = diffState(now.entries, target);
  const byPath = new Map(target.map((e) => [e.path, e]));
  const dirs = new Set<string>();
  try {
    for (const p of [...changes.added, ...changes.modified]) {
      const data = readStored(store, byPath.get(p)!);
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
    restartFeed(store);
  }
  return changes;
}
