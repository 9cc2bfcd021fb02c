/**
 * The checkpoints as recorded in the `checkpoints` table: listing and reading them (a damaged record is
 * reported, never dropped silently), publishing a new one, and retention (the rows go in the transaction that
 * publishes the next one; their snapshot folders and git refs just after it commits).
 */
import { checkpointId, selectPrune, type CheckpointKind } from '../domain/checkpoints.js';
import { deleteRef, updateRef } from '../run/git.js';
import { faultPoint } from '../store/fault.js';
import { listNames, sweepOrphanTemps } from '../store/fsx.js';
import { safeParse } from '../store/schema.js';
import type { Store } from '../store/store.js';
import {
  CHECKPOINTS_DIR,
  checkpointBodySchema,
  ID_RE,
  JOURNAL_KEY,
  JOURNAL_RECORD,
  checkpointRef,
  type CheckpointBody,
  type CheckpointRecord,
} from './records.js';
import { placeSnapshot, removeSnapshot, type StagedSnapshot } from './state.js';

/** A staged snapshot older than this was left by a process that died before publishing it. */
const STAGED_MAX_AGE_MS = 60 * 60_000;

export interface Damaged {
  id: string;
  seq: number;
  problem: string;
}

export interface Catalog {
  /** Readable checkpoints, oldest first. */
  records: CheckpointRecord[];
  damaged: Damaged[];
}

interface Row {
  seq: number;
  body: string;
}

export function readCatalog(store: Store): Catalog {
  const records: CheckpointRecord[] = [];
  const damaged: Damaged[] = [];
  for (const row of store.db.all<Row>('SELECT seq, body FROM checkpoints ORDER BY seq')) {
    const r = decode(row);
    if ('record' in r) records.push(r.record);
    else damaged.push({ id: checkpointId(row.seq), seq: row.seq, problem: r.problem });
  }
  return { records, damaged };
}

/** One checkpoint's record, why it cannot be used, or undefined when there is no such checkpoint. */
export function readRecord(store: Store, id: string): { record: CheckpointRecord } | { problem: string } | undefined {
  const m = ID_RE.exec(id);
  const row = m ? store.db.get<Row>('SELECT seq, body FROM checkpoints WHERE seq = ?', Number(m[1])) : undefined;
  return row && decode(row);
}

/** The newest automatic checkpoint's record, if it is readable. */
export function newestAuto(store: Store): CheckpointRecord | undefined {
  const row = store.db.get<Row>("SELECT seq, body FROM checkpoints WHERE type = 'auto' ORDER BY seq DESC LIMIT 1");
  const r = row && decode(row);
  return r && 'record' in r ? r.record : undefined;
}

function decode(row: Row): { record: CheckpointRecord } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(row.body);
  } catch {
    return { problem: 'its record is not valid JSON (changed outside loki-mode)' };
  }
  const parsed = safeParse(checkpointBodySchema(), raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      problem: `its record is damaged (${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'}): it was changed outside loki-mode`,
    };
  }
  return { record: { id: checkpointId(row.seq), seq: row.seq, ...parsed.data } };
}

/** What publishing left to do once its transaction has committed: the pruned checkpoints' folders and refs. */
export interface Published {
  record: CheckpointRecord;
  pruned: string[];
}

/**
 * Inside a transaction: record a checkpoint, move its staged snapshot into place, point its git ref at its code
 * commit, audit it, and apply retention (keep the newest `keep` automatic and `keep` pre-rollback checkpoints;
 * manual ones stay). A crash or a throw before the commit leaves a folder or a ref under an id the next
 * checkpoint is given again (the sequence is part of the transaction), and that one replaces them.
 */
export function publishLocked(
  store: Store,
  root: string,
  body: CheckpointBody,
  staged: StagedSnapshot,
  keep: number,
  protect?: string,
): Published {
  const { seq } = store.db.get<{ seq: number }>(
    'INSERT INTO checkpoints (body) VALUES (?) RETURNING seq',
    JSON.stringify(body),
  )!;
  const id = checkpointId(seq);
  placeSnapshot(store, staged, id);
  if (body.code.commit) {
    const refused = updateRef(root, checkpointRef(id), body.code.commit);
    if (refused) throw new Error(`could not record the code snapshot in git: ${refused}`);
  }
  const pruned = pruneLocked(store, root, keep, protect);
  store.audit.appendAll([
    {
      action: 'checkpoint.create',
      target: id,
      data: {
        kind: body.type,
        trigger: body.trigger,
        label: body.label,
        commit: body.code.commit,
        rows: body.state.rows,
        // What rollback checks the snapshot against: the checkpoint's row and file are both under .loki/.
        digest: body.state.digest,
        ...(pruned.length > 0 ? { pruned } : {}),
      },
    },
  ]);
  faultPoint('checkpoint-before-commit');
  return { record: { id, seq, ...body }, pruned };
}

/**
 * Inside a transaction: delete the rows retention removes, and sweep what no row names (folders and refs whose
 * removal a crash interrupted; nobody else can be publishing while this transaction holds the write lock).
 * Retention spares `protect` and the checkpoint whose files a rollback journal still has to restore.
 */
function pruneLocked(store: Store, root: string, keep: number, protect: string | undefined): string[] {
  const all = store.db
    .all<{ seq: number; type: string }>('SELECT seq, type FROM checkpoints')
    .map((r) => ({ id: checkpointId(r.seq), seq: r.seq, type: r.type as CheckpointKind }));
  const spared = new Set([protect, store.records.read(JOURNAL_KEY, JOURNAL_RECORD)?.target]);
  const doomed = selectPrune(all, keep).filter((id) => !spared.has(id));
  for (const id of doomed) store.db.run('DELETE FROM checkpoints WHERE seq = ?', Number(ID_RE.exec(id)![1]));
  const known = new Set(all.map((r) => r.id));
  for (const name of listNames(store.loki, CHECKPOINTS_DIR)) {
    if (ID_RE.test(name) && !known.has(name)) removeFiles(store, root, name);
  }
  sweepOrphanTemps(store.loki, CHECKPOINTS_DIR, STAGED_MAX_AGE_MS);
  return doomed;
}

/** After the commit that removed their records: the checkpoints' git refs, then their folders. */
export function removePruned(store: Store, root: string, ids: readonly string[]): void {
  for (const id of ids) {
    try {
      removeFiles(store, root, id);
    } catch (err) {
      // Its record is gone: whatever is left has no name any more and is swept by the next checkpoint.
      process.emitWarning(`loki: could not remove checkpoint ${id}'s files: ${(err as Error).message}`, {
        code: 'LOKI_CHECKPOINT_PRUNE',
      });
    }
  }
}

/** The ref first: a folder left without its record is what tells a later sweep that a ref may be left too. */
function removeFiles(store: Store, root: string, id: string): void {
  deleteRef(root, checkpointRef(id));
  removeSnapshot(store, id);
}
