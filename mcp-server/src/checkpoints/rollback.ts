/**
 * Rollback: check the target checkpoint completely, take a pre-rollback checkpoint (the undo), write a journal,
 * restore the working tree (when asked) and the `.loki/` state, then remove the journal. Every step after the
 * journal can be repeated, so a rollback killed at any point is finished by the next rollback or by the next
 * tool call of any loki process (`completeInterruptedRollback`), before anything reads the half-restored state.
 */
import { parseNameStatus, selectLatest, summarizeChanges, type ChangeSet, type ChangeSummary, type StateEntry } from '../domain/checkpoints.js';
import { log } from '../log.js';
import type { Project } from '../project.js';
import { checkoutTree, diffTrees, snapshotProblem } from '../run/git.js';
import { UsageError } from '../run/state.js';
import { faultPoint } from '../store/fault.js';
import { removeFile } from '../store/fsx.js';
import { LockTimeoutError } from '../store/lock.js';
import type { Store } from '../store/store.js';
import { prune, readCatalog, readManifest, readRecord } from './catalog.js';
import { auditCreated, createLocked, snapshotCode, storedBase, withCheckpointLocks } from './create.js';
import { CHECKPOINTS_DIR, ID_RE, JOURNAL_FILE, JOURNAL_RECORD, checkpointRef, scopeOf, type CheckpointRecord, type RollbackJournal } from './records.js';
import { restoreState, scanState, stateProblem } from './state.js';

/** How long a rollback waits for another process's state lock before refusing. */
export const ROLLBACK_LOCK_WAIT_MS = 2_000;

export interface RollbackResult {
  target: string;
  label: string;
  /** The checkpoint taken just before: roll back to it to undo this rollback. */
  preRollback: string;
  scope: 'code+state' | 'state only';
  codeRestored: boolean;
  changes: { code: ChangeSummary | null; state: ChangeSummary };
  /** This call finished a rollback to the same checkpoint that had been interrupted. */
  resumed: boolean;
  note: string | null;
}

interface Verified {
  record: CheckpointRecord;
  entries: StateEntry[];
}

export async function rollback(project: Project, target: string, code: boolean): Promise<RollbackResult> {
  if (target !== 'latest' && !ID_RE.test(target)) {
    throw new UsageError(`target must be "latest" or a checkpoint id such as "cp-12", got "${target.slice(0, 80)}"; loki_checkpoint_list shows the ids`);
  }
  const keep = project.config().checkpointRetention;
  const store = project.openStore();
  const out = await underRollbackLocks(store, () => rollbackLocked(project.root, store, target, code, keep, project.actor));
  if (out.pre) await auditCreated(store, out.pre, []);
  await auditRollback(store, out.result);
  return out.result;
}

async function underRollbackLocks<T>(store: Store, fn: () => T): Promise<T> {
  try {
    return await withCheckpointLocks(store, fn, ROLLBACK_LOCK_WAIT_MS);
  } catch (err) {
    if (!(err instanceof LockTimeoutError)) throw err;
    const who = err.owner ? `pid ${err.owner.pid} on ${err.owner.host}` : 'another process';
    throw new UsageError(
      `refused: ${who} holds the state lock, so the run is being changed right now. Wait for it to finish (or stop that ` +
        'agent) and run the rollback again; `loki doctor` shows the lock and clears it if its holder is dead',
    );
  }
}

function rollbackLocked(root: string, store: Store, target: string, code: boolean, keep: number, actor: string): { result: RollbackResult; pre: CheckpointRecord | null } {
  const journal = store.records.read(JOURNAL_FILE, JOURNAL_RECORD);
  const id = target === 'latest' ? latestId(store) : target;
  if (journal) {
    try {
      const finished = finishLocked(root, store, journal);
      if (journal.target === id && journal.code === code) return { result: { ...finished, resumed: true }, pre: null };
    } catch (err) {
      if (journal.target === id) throw err;
      log.warn(`${(err as Error).message}; rolling back to ${id} instead`);
    }
  }
  const verified = verifyTarget(root, store, id, code);
  const req = { kind: 'pre-rollback', trigger: 'rollback', label: `before rollback to ${id}`, reason: null, rollbackTo: id } as const;
  const base = storedBase(store);
  const pre = createLocked(root, store, req, snapshotCode(root), scanState(store, base.stored), keep, false, base);
  if (!('created' in pre)) throw new Error('internal: a pre-rollback checkpoint is never coalesced');
  const preRecord = pre.created;
  store.records.write(JOURNAL_FILE, JOURNAL_RECORD, { target: id, preRollback: preRecord.id, code, startedAt: new Date().toISOString(), actor });
  faultPoint('rollback-journal-written');
  const changes = apply(root, store, verified, code, preRecord.code.tree);
  removeFile(store.loki, JOURNAL_FILE);
  prune(store, root, keep);
  return { result: resultOf(verified.record, preRecord.id, code, changes, false), pre: preRecord };
}

function latestId(store: Store): string {
  const latest = selectLatest(readCatalog(store).records);
  if (!latest) throw new UsageError('there is no checkpoint to roll back to yet: create one with loki_checkpoint_create (or `loki checkpoint`)');
  return latest.id;
}

/** Everything a restore needs is there and intact, or a refusal that says what is wrong and what to do. */
function verifyTarget(root: string, store: Store, id: string, code: boolean): Verified {
  const damaged = (problem: string) =>
    new UsageError(`checkpoint ${id} is damaged (${problem}) and cannot be restored; nothing was changed. Pick another one from loki_checkpoint_list`);
  if (!store.exists(`${CHECKPOINTS_DIR}/${id}`)) throw new UsageError(`no checkpoint "${id}": loki_checkpoint_list shows the ids`);
  const r = readRecord(store, id);
  if ('problem' in r) throw damaged(r.problem);
  const m = readManifest(store, r.record);
  if ('problem' in m) throw damaged(m.problem);
  const sp = stateProblem(store, m.entries);
  if (sp) throw damaged(sp);
  if (code) {
    if (!r.record.code.commit || !r.record.code.tree) {
      throw new UsageError(`checkpoint ${id} has no code snapshot (${r.record.code.note ?? 'none was taken'}); roll back with code: false to restore the .loki/ state only`);
    }
    const problem = snapshotProblem(root, checkpointRef(id), r.record.code.commit);
    if (problem) throw damaged(problem);
  }
  return { record: r.record, entries: m.entries };
}

/** Restore the files (when `code`) and the state. `fromTree` is the working tree now, when already known. */
function apply(root: string, store: Store, v: Verified, code: boolean, fromTree: string | null): { code: ChangeSet | null; state: ChangeSet } {
  let codeChanges: ChangeSet | null = null;
  if (code) {
    const from = fromTree ?? snapshotCode(root).tree!;
    const to = v.record.code.tree!;
    codeChanges = parseNameStatus(diffTrees(root, from, to));
    checkoutTree(root, to, from, codeChanges.removed, [...codeChanges.added, ...codeChanges.modified]);
    faultPoint('rollback-code-restored');
  }
  const state = restoreState(store, v.entries);
  faultPoint('rollback-state-restored');
  return { code: codeChanges, state };
}

/** Complete the journal's rollback (the pre-rollback checkpoint already exists) and remove the journal. */
function finishLocked(root: string, store: Store, journal: RollbackJournal): RollbackResult {
  let verified: Verified;
  try {
    verified = verifyTarget(root, store, journal.target, journal.code);
  } catch (err) {
    throw new UsageError(
      `an interrupted rollback to ${journal.target} cannot be completed: ${(err as Error).message}. ` +
        `The state from before it is checkpoint ${journal.preRollback}: roll back to that one instead`,
    );
  }
  const changes = apply(root, store, verified, journal.code, null);
  removeFile(store.loki, JOURNAL_FILE);
  return resultOf(verified.record, journal.preRollback, journal.code, changes, true);
}

function resultOf(record: CheckpointRecord, preRollback: string, code: boolean, changes: { code: ChangeSet | null; state: ChangeSet }, resumed: boolean): RollbackResult {
  return {
    target: record.id,
    label: record.label,
    preRollback,
    scope: scopeOf(record),
    codeRestored: code,
    changes: { code: changes.code && summarizeChanges(changes.code), state: summarizeChanges(changes.state) },
    resumed,
    note: code ? null : record.code.tree ? 'code left as it is (pass code: true to restore the files too)' : record.code.note,
  };
}

async function auditRollback(store: Store, r: RollbackResult): Promise<void> {
  const counts = (s: ChangeSummary | null) => s && { added: s.added, modified: s.modified, removed: s.removed };
  try {
    await store.audit.append('checkpoint.rollback', r.target, { preRollback: r.preRollback, code: r.codeRestored, resumed: r.resumed, changes: { code: counts(r.changes.code), state: counts(r.changes.state) } });
  } catch (err) {
    log.warn(`rollback to ${r.target} done but not audited: ${(err as Error).message}`);
  }
}

/**
 * Before a tool call: when a rollback was interrupted (its journal is still there), finish it first, so no call
 * sees half-restored state. Costs one lstat when there is nothing to do; never fails the call.
 */
export async function completeInterruptedRollback(project: Project): Promise<void> {
  if (!project.hasStore()) return;
  const store = project.openStore();
  if (!store.exists(JOURNAL_FILE)) return;
  try {
    const r = await withCheckpointLocks(store, () => {
      const journal = store.records.read(JOURNAL_FILE, JOURNAL_RECORD);
      return journal ? finishLocked(project.root, store, journal) : null;
    });
    if (r) await auditRollback(store, r);
  } catch (err) {
    log.warn(`${(err as Error).message}`);
  }
}


