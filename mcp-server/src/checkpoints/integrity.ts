/**
 * Whether a checkpoint can be restored as its record says. Its state: the record readable, the snapshot file
 * there (a regular file under .loki/, reached through the path validator), openable, at a schema this loki-mode
 * knows, holding exactly the rows its digest names, and that digest the one the audit log recorded when loki-mode
 * took it. Its code: the git ref and every object of the commit. A rollback checks its target with these before
 * it changes anything; `loki doctor` checks every checkpoint, and `--fix` removes the ones whose state can never
 * come back (no rollback could use them; the audit log keeps that they existed, and why they went) and records
 * the ones whose code is gone as state-only.
 */
import type { StateRow } from '../domain/checkpoints.js';
import { PathError } from '../errors.js';
import { deleteRef, snapshotProblem } from '../run/git.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import type { Store } from '../store/store.js';
import { readCatalog, removePruned } from './catalog.js';
import { ID_RE, JOURNAL_KEY, JOURNAL_RECORD, checkpointRef, snapshotFile, type CheckpointRecord } from './records.js';
import { attach, schemaVersion, stateDigest, stateRows } from './state.js';

/** Why a checkpoint's state cannot be restored; `newer`: by this loki-mode (a newer one took it). */
export interface Problem {
  problem: string;
  newer?: true;
}

/** The absolute path of checkpoint `id`'s state snapshot, or why it cannot be used. */
export function snapshotPath(store: Store, id: string): { file: string } | Problem {
  const rel = snapshotFile(id);
  try {
    return { file: store.loki.resolve(rel, { leaf: 'file' }).absolute };
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING')
      return { problem: `its state snapshot .loki/${rel} is missing` };
    return { problem: `its state snapshot .loki/${rel} cannot be used: ${(err as Error).message}` };
  }
}

/** Why the code snapshot of `record` cannot be restored; null when it can, or when it has none. */
export function codeProblem(root: string, record: CheckpointRecord): string | null {
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
    return { problem: `its state snapshot cannot be read: ${(err as Error).message}` };
  }
  if (rows.length !== record.state.rows || stateDigest(rows) !== record.state.digest)
    return { problem: 'its state snapshot does not match the digest in its record' };
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
    return { problem: 'its state digest is not the one the audit log recorded when it was taken' };
  return { rows, version };
}

export interface CheckpointDamage {
  id: string;
  problem: string;
  /** Only the code snapshot is gone: the state can still be restored (a rollback without the code). */
  stateRestorable: boolean;
  /** Taken by a newer loki-mode: not damaged, only beyond this one. */
  newer: boolean;
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
  }));
  for (const record of catalog.records) {
    const state = stateProblem(store, record);
    const code = state ? null : codeProblem(root, record);
    if (state) damaged.push({ id: record.id, seq: record.seq, ...state, stateRestorable: false, newer: !!state.newer });
    else if (code) damaged.push({ id: record.id, seq: record.seq, problem: code, stateRestorable: true, newer: false });
  }
  damaged.sort((a, b) => a.seq - b.seq);
  return {
    count: catalog.records.length + catalog.damaged.length,
    damaged: damaged.map(({ seq: _seq, ...d }) => d),
  };
}

function stateProblem(store: Store, record: CheckpointRecord): Problem | null {
  const snapshot = snapshotPath(store, record.id);
  if ('problem' in snapshot) return snapshot;
  let detach: () => void;
  try {
    detach = attach(store, snapshot.file, CHECKED);
  } catch (err) {
    return { problem: `its state snapshot cannot be opened: ${(err as Error).message}` };
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
}

/**
 * `loki doctor --fix`, in one audited transaction: remove the checkpoints whose state cannot be restored, and
 * record those whose code snapshot is gone as what they still are, state-only checkpoints; then remove the
 * removed ones' snapshot folders, and the git refs of both. Kept as they are: checkpoints a newer loki-mode can
 * restore, and the target of a rollback whose files are not restored yet (its journal names it).
 */
export function repairCheckpoints(store: Store, root: string, damaged: readonly CheckpointDamage[]): Repaired {
  const done = store.mutate(
    () => {
      const pending = store.records.read(JOURNAL_KEY, JOURNAL_RECORD)?.target;
      const removed: CheckpointDamage[] = [];
      const stateOnly: CheckpointDamage[] = [];
      for (const d of damaged) {
        if (d.newer || d.id === pending) continue;
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
              removed: r.removed.map((d) => ({ id: d.id, problem: d.problem })),
              stateOnly: r.stateOnly.map((d) => ({ id: d.id, problem: d.problem })),
            },
          }
        : undefined,
  );
  const removed = done.removed.map((d) => d.id);
  const stateOnly = done.stateOnly.map((d) => d.id);
  removePruned(store, root, removed);
  for (const id of stateOnly) deleteRef(root, checkpointRef(id));
  return { removed, stateOnly };
}
