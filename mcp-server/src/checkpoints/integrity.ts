/**
 * Whether a checkpoint can be restored as its record says. Its state: the record readable, the snapshot file
 * there (a regular file under .loki/, reached through the path validator), openable, at a schema this loki-mode
 * knows, holding exactly the rows its digest names, and that digest the one the audit log recorded when loki-mode
 * took it. Its code: the git ref and every object of the commit. A rollback checks its target with these before
 * it changes anything; `loki doctor` checks every checkpoint, and `--fix` removes the ones whose state can never
 * come back (no rollback could use them; the audit log keeps that they existed, and why they went) and records
 * the ones whose code is gone as state-only. Only a definite fault counts: git said the ref or object is not
 * there, the file is missing or not a database, a check failed. An error that says nothing about the checkpoint
 * (git not runnable, EACCES, a lock) is reported and left alone; a snapshot whose rows are not the ones recorded
 * is tamper evidence, moved aside, never deleted.
 */
import type { StateRow } from '../domain/checkpoints.js';
import { PathError } from '../errors.js';
import fs from 'node:fs';
import path from 'node:path';
import { deleteRef, snapshotProblem, type SnapshotProblem } from '../run/git.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import type { Store } from '../store/store.js';
import { readCatalog, removePruned } from './catalog.js';
import {
  CHECKPOINTS_DIR,
  ID_RE,
  JOURNAL_KEY,
  JOURNAL_RECORD,
  checkpointRef,
  snapshotFile,
  type CheckpointRecord,
} from './records.js';
import { attach, schemaVersion, stateDigest, stateRows } from './state.js';

/**
 * Why a checkpoint's state cannot be restored; `newer`: by this loki-mode (a newer one took it). `unknown`: the
 * snapshot could not be looked at (permissions, too many open files, a lock): nothing is known to be wrong with
 * it. `evidence`: its rows are not the ones loki-mode recorded (changed behind its back), to be kept.
 */
export interface Problem {
  problem: string;
  newer?: true;
  unknown?: true;
  evidence?: true;
}

/** The absolute path of checkpoint `id`'s state snapshot, or why it cannot be used. */
export function snapshotPath(store: Store, id: string): { file: string } | Problem {
  const rel = snapshotFile(id);
  try {
    return { file: store.loki.resolve(rel, { leaf: 'file' }).absolute };
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING')
      return { problem: `its state snapshot .loki/${rel} is missing` };
    // The validator refusing what is there (a link, a folder, a hard link) is a definite fault; an error from the
    // file system (EACCES, EMFILE, EIO) says nothing about the snapshot.
    if (err instanceof PathError) return { problem: `its state snapshot .loki/${rel} cannot be used: ${err.message}` };
    return { problem: `its state snapshot .loki/${rel} could not be looked at: ${errorText(err)}`, unknown: true };
  }
}

/**
 * Why the code snapshot of `record` cannot be restored; null when it can, or when it has none. Not `definite`
 * when git could not be asked (run/git.ts snapshotProblem).
 */
export function codeProblem(root: string, record: CheckpointRecord): SnapshotProblem | null {
  if (!record.code.commit || !record.code.tree) return null;
  return snapshotProblem(root, checkpointRef(record.id), record.code.commit);
}

/**
 * The snapshot attached as `alias` holds the state `record` describes: its rows, hashed at the schema it was
 * taken at, match the record's digest, and that digest is the one the audit log recorded. Its rows and schema
 * version, or the problem.
 */
export function checkAttached(
  store: Store,
  alias: string,
  record: CheckpointRecord,
): { rows: StateRow[]; version: number } | Problem {
  let version: number;
  let rows: StateRow[];
  try {
    version = schemaVersion(store, alias);
    if (version > SCHEMA_VERSION)
      return {
        problem: `it was taken by a newer loki-mode (database schema ${version}; this one knows up to ${SCHEMA_VERSION})`,
        newer: true,
      };
    rows = stateRows(store, alias);
  } catch (err) {
    return definiteSqlite(err)
      ? { problem: `its state snapshot cannot be read: ${(err as Error).message}` }
      : { problem: `its state snapshot could not be read: ${errorText(err)}`, unknown: true };
  }
  if (rows.length !== record.state.rows || stateDigest(rows) !== record.state.digest)
    return { problem: 'its state snapshot does not match the digest in its record', evidence: true };
  // The record and the snapshot file are both under .loki/, where a shell can rewrite them consistently (a
  // forged passing verification copied in would then come back with the rollback): the digest must also be the
  // one the audit log recorded when loki-mode took the checkpoint.
  const audited = store.db.get<{ digest: string | null }>(
    "SELECT data ->> '$.digest' AS digest FROM audit WHERE action = 'checkpoint.create' AND target = ? ORDER BY seq DESC LIMIT 1",
    record.id,
  );
  if (!audited) return { problem: 'the audit log has no record of loki-mode taking it' };
  // Checkpoints taken before the digest was audited (0.2) have none to compare.
  if (audited.digest !== null && audited.digest !== record.state.digest)
    return { problem: 'its state digest is not the one the audit log recorded when it was taken', evidence: true };
  return { rows, version };
}

/**
 * SQLite's primary result codes that say the file itself is bad (SQLITE_CORRUPT 11, SQLITE_NOTADB 26, and
 * SQLITE_ERROR 1 for a schema that is not a loki-mode one: "no such table"); any other (SQLITE_BUSY, SQLITE_LOCKED,
 * SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_NOMEM, SQLITE_PERM, SQLITE_AUTH) is about this moment or this process.
 */
const DEFINITE_SQLITE = new Set([1, 11, 26]);

function definiteSqlite(err: unknown): boolean {
  const errcode = (err as { errcode?: unknown }).errcode;
  return typeof errcode === 'number' && DEFINITE_SQLITE.has(errcode & 0xff);
}

/** An error with its code (errno or SQLite's), for a line that says what happened without judging it. */
function errorText(err: unknown): string {
  const e = err as { code?: unknown; errcode?: unknown; errstr?: unknown; message?: unknown };
  const code = typeof e.errcode === 'number' ? `SQLite ${e.errcode}${e.errstr ? ` ${String(e.errstr)}` : ''}` : e.code;
  const text = err instanceof Error ? err.message : String(err);
  return code ? `${text} (${String(code)})` : text;
}

export interface CheckpointDamage {
  id: string;
  problem: string;
  /** Only the code snapshot is gone: the state can still be restored (a rollback without the code). */
  stateRestorable: boolean;
  /** Taken by a newer loki-mode: not damaged, only beyond this one. */
  newer: boolean;
  /** It could not be checked (git would not run, the snapshot could not be opened now): left alone by --fix. */
  unchecked: boolean;
  /** Its snapshot holds rows loki-mode did not record (tamper evidence): --fix moves it aside, never deletes it. */
  evidence: boolean;
}

/** The alias each checkpoint's snapshot is attached under while it is checked. */
const CHECKED = 'cp_checked';

/** Every checkpoint checked whole (outside a transaction: snapshots are attached one by one); the damaged, named. */
export function inspectCheckpoints(root: string, store: Store): { count: number; damaged: CheckpointDamage[] } {
  const catalog = readCatalog(store);
  const damaged: (CheckpointDamage & { seq: number })[] = catalog.damaged.map((d) => ({
    id: d.id,
    seq: d.seq,
    problem: d.problem,
    stateRestorable: false,
    newer: false,
    unchecked: false,
    evidence: false,
  }));
  for (const record of catalog.records) {
    const state = stateProblem(store, record);
    const code = state ? null : codeProblem(root, record);
    if (state)
      damaged.push({
        id: record.id,
        seq: record.seq,
        problem: state.problem,
        stateRestorable: false,
        newer: !!state.newer,
        unchecked: !!state.unknown,
        evidence: !!state.evidence,
      });
    else if (code)
      damaged.push({
        id: record.id,
        seq: record.seq,
        problem: code.problem,
        stateRestorable: true,
        newer: false,
        unchecked: !code.definite,
        evidence: false,
      });
  }
  damaged.sort((a, b) => a.seq - b.seq);
  return {
    count: catalog.records.length + catalog.damaged.length,
    damaged: damaged.map(({ seq: _seq, ...d }) => d),
  };
}

/** How long loki doctor waits for a snapshot another process holds locked before naming it as unchecked. */
const SNAPSHOT_LOCK_WAIT_MS = 2000;

function stateProblem(store: Store, record: CheckpointRecord): Problem | null {
  return store.db.withBusyTimeout(SNAPSHOT_LOCK_WAIT_MS, () => attachedStateProblem(store, record));
}

function attachedStateProblem(store: Store, record: CheckpointRecord): Problem | null {
  const snapshot = snapshotPath(store, record.id);
  if ('problem' in snapshot) return snapshot;
  let detach: () => void;
  try {
    detach = attach(store, snapshot.file, CHECKED);
  } catch (err) {
    return definiteSqlite(err)
      ? { problem: `its state snapshot cannot be opened: ${(err as Error).message}` }
      : { problem: `its state snapshot could not be opened: ${errorText(err)}`, unknown: true };
  }
  try {
    const checked = checkAttached(store, CHECKED, record);
    return 'problem' in checked ? checked : null;
  } finally {
    detach();
  }
}

/** What `loki doctor --fix` did to the damaged checkpoints. */
export interface Repaired {
  /** Removed: their state could never be restored. */
  removed: string[];
  /** Their code snapshot was gone: recorded as state-only checkpoints, which is what they still are. */
  stateOnly: string[];
  /** Tamper evidence: dropped from the catalog, their folder kept under another name (`.loki/<path>`). */
  movedAside: { id: string; path: string }[];
  /** Tamper evidence that could not be moved aside: left as it was, with why. */
  kept: { id: string; reason: string }[];
}

/**
 * `loki doctor --fix`, in one audited transaction: remove the checkpoints whose state cannot be restored, and
 * record those whose code snapshot is gone as what they still are, state-only checkpoints; then remove the
 * removed ones' snapshot folders, and the git refs of both. A snapshot holding rows loki-mode did not record is
 * evidence: its folder is renamed `<id>.damaged` first (the catalog then drops it), never deleted. Kept as they
 * are: checkpoints that could not be checked (git would not run, the snapshot could not be opened just now),
 * checkpoints a newer loki-mode can restore, and the target of a rollback whose files are not restored yet.
 */
export function repairCheckpoints(store: Store, root: string, damaged: readonly CheckpointDamage[]): Repaired {
  const pendingNow = store.records.read(JOURNAL_KEY, JOURNAL_RECORD)?.target;
  const movedAside: { id: string; path: string }[] = [];
  const kept: { id: string; reason: string }[] = [];
  const repairable = damaged.filter((d) => {
    if (d.newer || d.unchecked || d.id === pendingNow) return false;
    if (!d.evidence) return true;
    const moved = moveAside(store, d.id);
    if ('reason' in moved) kept.push({ id: d.id, reason: moved.reason });
    else movedAside.push({ id: d.id, path: moved.path });
    return 'path' in moved;
  });
  const aside = new Map(movedAside.map((m) => [m.id, m.path]));
  const done = store.mutate(
    () => {
      const pending = store.records.read(JOURNAL_KEY, JOURNAL_RECORD)?.target;
      const removed: CheckpointDamage[] = [];
      const stateOnly: CheckpointDamage[] = [];
      for (const d of repairable) {
        if (d.id === pending) continue;
        const seq = Number(ID_RE.exec(d.id)![1]);
        if (!d.stateRestorable) {
          if (store.db.run('DELETE FROM checkpoints WHERE seq = ?', seq).changes === 1) removed.push(d);
          continue;
        }
        const note = `code snapshot lost: ${d.problem}`.slice(0, 500);
        const changed = store.db.run(
          "UPDATE checkpoints SET body = json_set(body, '$.code.commit', json('null'), '$.code.tree', json('null'), '$.code.note', ?) WHERE seq = ?",
          note,
          seq,
        ).changes;
        if (changed === 1) stateOnly.push(d);
      }
      return { removed, stateOnly };
    },
    (r) =>
      r.removed.length + r.stateOnly.length > 0
        ? {
            action: 'checkpoint.repair',
            data: {
              by: 'loki doctor --fix',
              removed: r.removed.map((d) => ({
                id: d.id,
                problem: d.problem,
                ...(aside.has(d.id) ? { keptAt: `.loki/${aside.get(d.id)}` } : {}),
              })),
              stateOnly: r.stateOnly.map((d) => ({ id: d.id, problem: d.problem })),
            },
          }
        : undefined,
  );
  const removedIds = done.removed.map((d) => d.id);
  const stateOnly = done.stateOnly.map((d) => d.id);
  // The moved folders are out of the way already; only their refs go (the evidence is the state snapshot).
  removePruned(
    store,
    root,
    removedIds.filter((id) => !aside.has(id)),
  );
  for (const id of removedIds.filter((i) => aside.has(i))) deleteRef(root, checkpointRef(id));
  for (const id of stateOnly) deleteRef(root, checkpointRef(id));
  return {
    removed: removedIds.filter((id) => !aside.has(id)),
    stateOnly,
    movedAside: movedAside.filter((m) => removedIds.includes(m.id)),
    kept,
  };
}

/** Rename checkpoint `id`'s folder to `<id>.damaged` (or `<id>.damaged-<n>`), out of every sweep's reach. */
function moveAside(store: Store, id: string): { path: string } | { reason: string } {
  const folder = `${CHECKPOINTS_DIR}/${id}`;
  let from: string;
  try {
    from = store.loki.resolve(folder, { leaf: 'dir' }).absolute;
  } catch (err) {
    return { reason: `its folder .loki/${folder} cannot be used: ${errorText(err)}` };
  }
  for (let n = 0; n < 100; n++) {
    const name = `${id}.damaged${n === 0 ? '' : `-${n}`}`;
    const to = path.join(path.dirname(from), name);
    if (fs.existsSync(to)) continue;
    try {
      fs.renameSync(from, to);
      return { path: `${CHECKPOINTS_DIR}/${name}` };
    } catch (err) {
      return { reason: `could not rename .loki/${folder}: ${errorText(err)}` };
    }
  }
  return { reason: `.loki/${folder}.damaged and 99 more names are taken` };
}
