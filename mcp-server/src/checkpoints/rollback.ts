/**
 * Rollback. The target is checked completely first (its record, its state snapshot's schema and digest, its git
 * objects). Then one transaction, under the database's write lock, copies the state as it is into the
 * pre-rollback checkpoint (the undo: nobody else can commit while the lock is held, so it holds exactly the
 * state the rollback replaces), replaces the state rows with the target's, and appends both to the audit log:
 * the state is the old one or the new one, never a mix.
 *
 * History stays as it is (domain HISTORY_DOC_KINDS: verifications, councils and their votes, a person's waivers,
 * and the run's trust state with the findings of refused completions): a rollback goes back to earlier work, never
 * to a record with a rejection or a red verification erased.
 *
 * Files are restored after that commit, because git cannot take part in the transaction: when asked to, the
 * transaction also writes a journal, and a second one restores the working tree and removes it. A rollback
 * killed in between leaves the journal; the next rollback, or the next tool call of any loki process, restores
 * the files first. That happens under the write lock too, so two processes never restore files at once.
 */
import { isPersonSurface, personAt } from '../run/person.js';
import fs from 'node:fs';
import {
  diffState,
  historyKinds,
  parseNameStatus,
  selectLatest,
  summarizeChanges,
  type ChangeSet,
  type ChangeSummary,
  type StateRow,
  withoutHistory,
} from '../domain/checkpoints.js';
import { UsageError } from '../errors.js';
import { log } from '../log.js';
import type { Project } from '../project.js';
import { checkoutTree, diffTrees } from '../run/git.js';
import { faultPoint } from '../store/fault.js';
import type { Store } from '../store/store.js';
import { publishLocked, readCatalog, readRecord, removePruned } from './catalog.js';
import { checkpointBody, commitCode, runIn, snapshotCode } from './create.js';
import { checkAttached, codeProblem, snapshotPath } from './integrity.js';
import { ID_RE, JOURNAL_KEY, JOURNAL_RECORD, scopeOf, type CheckpointRecord, type RollbackJournal } from './records.js';
import { attach, copyDatabase, migratedCopy, restoreRows, stateDigest, stateRows, trustRunId } from './state.js';
import { SCHEMA_VERSION } from '../store/migrations.js';

export interface RollbackResult {
  target: string;
  label: string;
  /** The checkpoint taken just before: roll back to it to undo this rollback. */
  preRollback: string;
  scope: 'code+state' | 'state only';
  codeRestored: boolean;
  changes: { code: ChangeSummary | null; state: ChangeSummary };
  /** This call finished a rollback to the same checkpoint whose files had not been restored yet. */
  resumed: boolean;
  /**
   * Finishing an interrupted rollback found files changed since it was interrupted: the checkpoint that keeps
   * them (roll back to it with code to get them back). Absent when there was nothing the undo did not hold.
   */
  keptFiles?: string;
  note: string | null;
}

/** The alias the target's snapshot is attached under for the whole rollback. */
const TARGET = 'cp_target';

export function rollback(project: Project, target: string, code: boolean): RollbackResult {
  if (target !== 'latest' && !ID_RE.test(target)) {
    throw new UsageError(
      `target must be "latest" or a checkpoint id such as "cp-12", got "${target.slice(0, 80)}"; loki_checkpoint_list shows the ids`,
    );
  }
  const root = project.root;
  // No .loki/ yet, so no checkpoint: refused without creating it.
  if (!project.hasStore())
    throw new UsageError(
      target === 'latest' ? NO_CHECKPOINT_YET : `no checkpoint "${target}": loki_checkpoint_list shows the ids`,
    );
  const store = project.openStore();
  const id = target === 'latest' ? latestId(store) : target;
  const journal = store.records.read(JOURNAL_KEY, JOURNAL_RECORD);
  if (journal) {
    try {
      const finished = finishFiles(project, store, null);
      if (finished && journal.target === id && code) return finished;
    } catch (err) {
      if (journal.target === id) throw err;
      log.warn(`${(err as Error).message}; rolling back to ${id} instead`);
    }
  }
  const { record, file } = checkTarget(root, store, id, code);
  const damaged = refusal(id);
  const open = (snapshot: string) => {
    try {
      return attach(store, snapshot, TARGET);
    } catch (err) {
      throw damaged(`its state snapshot cannot be opened: ${(err as Error).message}`);
    }
  };
  let detach = open(file);
  let migrated: ReturnType<typeof migratedCopy> | undefined;
  let current: ReturnType<typeof snapshotCode>;
  let done: ReturnType<typeof restoreState>;
  try {
    const { rows: targetRows, version } = checkSnapshot(store, record, damaged);
    // The undo covers the files whether or not this rollback restores them. Taken once the target is known to
    // be sound: a refused rollback writes nothing, not even git objects.
    current = snapshotCode(root);
    const commit = commitCode(root, current, `before rollback to ${id}`);
    if (version < SCHEMA_VERSION) {
      // Checked as it was taken; restored from a copy brought up to this schema.
      detach();
      migrated = migratedCopy(store, file);
      detach = open(migrated.file);
    }
    done = restoreState(project, store, record, code, targetRows, { code: current, commit });
  } finally {
    detach();
    migrated?.dispose();
  }
  removePruned(store, root, done.pruned);
  if (!code) return resultOf(record, done.preRollback, null, done.state, false);
  faultPoint('rollback-journal-written');
  const files = finishFiles(project, store, { preRollback: done.preRollback, record, from: current.tree! });
  // Null: another process found the journal first and restored the files itself; they are as asked either way.
  const codeChanges =
    files?.changes.code ?? summarizeChanges(parseNameStatus(diffTrees(root, current.tree!, record.code.tree!)));
  return resultOf(record, done.preRollback, codeChanges, done.state, false);
}

const NO_CHECKPOINT_YET =
  'there is no checkpoint to roll back to yet: create one with loki_checkpoint_create (or `loki checkpoint`)';

function latestId(store: Store): string {
  const latest = selectLatest(readCatalog(store).records);
  if (!latest) throw new UsageError(NO_CHECKPOINT_YET);
  return latest.id;
}

const refusal = (id: string) => (problem: string) =>
  new UsageError(
    `checkpoint ${id} is damaged (${problem}) and cannot be restored; nothing was changed. Pick another one from loki_checkpoint_list`,
  );

/**
 * The target's record, its state snapshot file (through the path validator: no link is followed to a database
 * elsewhere) and, when `code`, its git objects are there; returns the record and the snapshot's path.
 */
function checkTarget(
  root: string,
  store: Store,
  id: string,
  code: boolean,
): { record: CheckpointRecord; file: string } {
  const record = checkCode(root, store, id, code);
  const snapshot = snapshotPath(store, id);
  if ('problem' in snapshot) throw refusal(id)(snapshot.problem);
  return { record, file: snapshot.file };
}

/** The target's record and (when `code`) its git objects are there, or a refusal. */
function checkCode(root: string, store: Store, id: string, code: boolean): CheckpointRecord {
  const damaged = refusal(id);
  const r = readRecord(store, id);
  if (!r) throw new UsageError(`no checkpoint "${id}": loki_checkpoint_list shows the ids`);
  if ('problem' in r) throw damaged(r.problem);
  if (code) {
    if (!r.record.code.commit || !r.record.code.tree) {
      throw new UsageError(
        `checkpoint ${id} has no code snapshot (${r.record.code.note ?? 'none was taken'}); roll back with code: false to restore the .loki/ state only`,
      );
    }
    const problem = codeProblem(root, r.record);
    if (problem && !problem.definite)
      throw new UsageError(
        `checkpoint ${id}'s code snapshot could not be checked (${problem.problem}); nothing was changed. Make git runnable here and try again`,
      );
    if (problem) throw damaged(problem.problem);
  }
  return r.record;
}

/**
 * The attached snapshot holds the state its record describes (integrity.ts checkAttached) and is not from a
 * newer loki-mode. Returns its rows and schema version.
 */
function checkSnapshot(
  store: Store,
  record: CheckpointRecord,
  damaged: (problem: string) => UsageError,
): { rows: StateRow[]; version: number } {
  const checked = checkAttached(store, TARGET, record);
  if (!('problem' in checked)) return checked;
  if (checked.newer)
    throw new UsageError(
      `checkpoint ${record.id} ${checked.problem.replace(/^it /, '')}: upgrade loki-mode to restore it; nothing was changed`,
    );
  throw damaged(checked.problem);
}

/**
 * The rollback's one transaction: the pre-rollback checkpoint (a copy of the state as it is, made under the
 * write lock before anything is changed), the state rows restored from the target, the journal when files are
 * to follow, and the audit entries.
 */
function restoreState(
  project: Project,
  store: Store,
  record: CheckpointRecord,
  code: boolean,
  targetRows: readonly StateRow[],
  current: { code: ReturnType<typeof snapshotCode>; commit: string | null },
): { preRollback: string; state: ChangeSummary; pruned: string[] } {
  return store.tx(() => {
    const started = performance.now();
    // Retention in another process may have removed the target since it was checked.
    if (!readRecord(store, record.id))
      throw new UsageError(`checkpoint ${record.id} was removed by retention meanwhile; nothing was changed`);
    // The target is spared by retention until its files are restored too.
    const pre = keepUndo(
      project,
      store,
      `before rollback to ${record.id}`,
      record.id,
      current,
      started,
      code ? record.id : undefined,
    );
    const now = pre.now;
    // History is not restored: what the rollback changes, and reports, is the rest.
    const history = historyKinds({ current: trustRunId(store, 'main'), target: trustRunId(store, TARGET) });
    const state = summarizeChanges(diffState(withoutHistory(now, history), withoutHistory(targetRows, history)));
    restoreRows(store, TARGET, history);
    // A journal left by a rollback that could not be finished is replaced: this rollback decides the state now.
    if (code)
      store.records.write(JOURNAL_KEY, JOURNAL_RECORD, {
        target: record.id,
        preRollback: pre.id,
        state,
        startedAt: new Date().toISOString(),
        actor: project.actor,
      });
    else store.records.remove(JOURNAL_KEY);
    store.audit.appendAll([
      {
        action: 'checkpoint.rollback',
        target: record.id,
        // From the CLI or the dashboard, a person's action (run/person.ts); from a tool, the agent's.
        ...(isPersonSurface(project.actor) ? { actor: personAt(project, 'roll back').actor } : {}),
        data: { preRollback: pre.id, code, state: counts(state) },
      },
    ]);
    faultPoint('rollback-state-applied');
    return { preRollback: pre.id, state, pruned: pre.pruned };
  });
}

/**
 * Inside the write lock: a pre-rollback checkpoint of the state as it is and of the files as `current` holds
 * them (the undo of what follows). `protect` is spared by retention. Returns its id, the state rows it copied
 * and the checkpoints retention removed (their files go after the commit).
 */
function keepUndo(
  project: Project,
  store: Store,
  label: string,
  rollbackTo: string,
  current: { code: ReturnType<typeof snapshotCode>; commit: string | null },
  started: number,
  protect: string | undefined,
): { id: string; now: StateRow[]; pruned: string[] } {
  const staged = copyDatabase(store);
  try {
    const now = stateRows(store, 'main');
    const req = { kind: 'pre-rollback', trigger: 'rollback', label, reason: null, rollbackTo } as const;
    const body = checkpointBody(
      req,
      current.code,
      current.commit,
      { digest: stateDigest(now), rows: now.length, bytes: staged.bytes },
      runIn(store, 'main'),
      performance.now() - started,
    );
    const pre = publishLocked(store, project.root, body, staged, project.config().checkpointRetention, protect);
    return { id: pre.record.id, now, pruned: pre.pruned };
  } catch (err) {
    fs.rmSync(staged.file, { force: true });
    throw err;
  }
}

/** What the rollback that wrote the journal knows already: its target, checked, and the tree its undo holds. */
interface Own {
  preRollback: string;
  record: CheckpointRecord;
  from: string;
}

/**
 * Under the write lock: restore the files of the rollback the journal describes and remove the journal. Null
 * when there is no journal, or (`own`: called by the rollback that wrote it) not that one any more. Another
 * process finishing it checks the target again and starts from the working tree as it finds it; when that tree
 * is not the one the undo holds (files were changed after the interruption), it is kept first in a pre-rollback
 * checkpoint of its own (`keptFiles`), so what is overwritten can be brought back.
 */
function finishFiles(project: Project, store: Store, own: Own | null): RollbackResult | null {
  const root = project.root;
  let pruned: string[] = [];
  const result = store.tx(() => {
    const journal = store.records.read(JOURNAL_KEY, JOURNAL_RECORD);
    if (!journal || (own && journal.preRollback !== own.preRollback)) return null;
    const record = own?.record ?? journalTarget(root, store, journal);
    let from: string;
    let keptFiles: string | undefined;
    if (own) from = own.from;
    else {
      const started = performance.now();
      const current = snapshotCode(root);
      if (!current.tree)
        throw new Error(`cannot snapshot the working tree before restoring the files: ${current.note}`);
      from = current.tree;
      const undo = readRecord(store, journal.preRollback);
      const undoTree = undo && !('problem' in undo) ? undo.record.code.tree : null;
      if (from !== undoTree) {
        const label = `files before finishing the rollback to ${record.id}`;
        const commit = commitCode(root, current, label);
        // The journal's undo is spared too: it stays the way back to before the whole rollback.
        const kept = keepUndo(
          project,
          store,
          label,
          record.id,
          { code: current, commit },
          started,
          journal.preRollback,
        );
        keptFiles = kept.id;
        pruned = kept.pruned;
      }
    }
    const to = record.code.tree!;
    const changes: ChangeSet = parseNameStatus(diffTrees(root, from, to));
    checkoutTree(root, to, from, changes.removed, [...changes.added, ...changes.modified]);
    faultPoint('rollback-code-restored');
    store.records.remove(JOURNAL_KEY);
    const code = summarizeChanges(changes);
    const resumed = !own;
    store.audit.appendAll([
      {
        action: 'checkpoint.rollback-files',
        target: record.id,
        data: { preRollback: journal.preRollback, resumed, files: counts(code) },
      },
    ]);
    const done = resultOf(record, journal.preRollback, code, journal.state, resumed);
    return keptFiles ? { ...done, keptFiles } : done;
  });
  removePruned(store, root, pruned);
  return result;
}

/** The checkpoint a journal restores the files of (its code snapshot whole), or why the rollback cannot be finished. */
function journalTarget(root: string, store: Store, journal: RollbackJournal): CheckpointRecord {
  try {
    return checkCode(root, store, journal.target, true);
  } catch (err) {
    throw new UsageError(
      `an interrupted rollback to ${journal.target} cannot restore the files: ${(err as Error).message}. ` +
        `The state from before it is checkpoint ${journal.preRollback}: roll back to that one instead`,
    );
  }
}

const counts = (s: ChangeSummary) => ({ added: s.added, modified: s.modified, removed: s.removed });

function resultOf(
  record: CheckpointRecord,
  preRollback: string,
  code: ChangeSummary | null,
  state: ChangeSummary,
  resumed: boolean,
): RollbackResult {
  return {
    target: record.id,
    label: record.label,
    preRollback,
    scope: scopeOf(record),
    codeRestored: code !== null,
    changes: { code, state },
    resumed,
    note: code
      ? null
      : record.code.tree
        ? 'code left as it is (pass code: true to restore the files too)'
        : record.code.note,
  };
}

/**
 * `loki doctor --fix`: restore the files of a rollback whose journal is still there and remove the journal. Null
 * when there is none; throws, naming what to do, when it cannot be finished.
 */
export function finishInterruptedRollback(project: Project): RollbackResult | null {
  if (!project.hasStore()) return null;
  const store = project.openStore();
  if (!store.records.read(JOURNAL_KEY, JOURNAL_RECORD)) return null;
  return finishFiles(project, store, null);
}

/**
 * Before a tool call: when a rollback's files are still to be restored (its journal is there), restore them
 * first, so no call works on a working tree half way between two checkpoints. One indexed read when there is
 * nothing to do; never fails the call.
 */
export function completeInterruptedRollback(project: Project): void {
  if (!project.hasStore()) return;
  const store = project.openStore();
  try {
    if (store.records.read(JOURNAL_KEY, JOURNAL_RECORD)) finishFiles(project, store, null);
  } catch (err) {
    log.warn(`${(err as Error).message}`);
  }
}
