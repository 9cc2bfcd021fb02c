/**
 * Taking a checkpoint: the working tree as a git snapshot (outside the locks: git can take a moment), then,
 * under the checkpoints lock, a scan of the `.loki/` state (briefly holding the state and queue locks too), the
 * stored copies, the git ref, the record, retention, and the audit entry. Automatic checkpoints are coalesced: when neither the code nor the
 * state changed since the newest automatic one, none is taken.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkpointId, type CheckpointKind, type CheckpointTrigger } from '../domain/checkpoints.js';
import { log } from '../log.js';
import type { Project } from '../project.js';
import { QUEUE_LOCK } from '../queue/records.js';
import { commitSnapshot, headInfo, isGitRepository, snapshotTree } from '../run/git.js';
import { readRun } from '../run/state.js';
import { writeFileAtomic } from '../store/fsx.js';
import { LockTimeoutError } from '../store/lock.js';
import type { Store } from '../store/store.js';
import { prune, publish, readCatalog } from './catalog.js';
import { CHECKPOINTS_DIR, CHECKPOINT_LOCK, checkpointRef, type CheckpointRecord } from './records.js';
import { scanState, storeBlobs, type ScannedState } from './state.js';

export const STATE_ONLY_NOTE = 'not a git repository: this checkpoint covers .loki/ state only, not your files';

export interface CodeSnapshot {
  tree: string | null;
  head: string | null;
  branch: string | null;
  note: string | null;
}

export interface CreateRequest {
  kind: CheckpointKind;
  trigger: CheckpointTrigger;
  label: string;
  reason: string | null;
  rollbackTo?: string | null;
}

export type CreateOutcome =
  | { created: CheckpointRecord; pruned: string[]; skippedFiles: string[] }
  /** Coalesced: the newest automatic checkpoint already holds this code and state. */
  | { unchanged: string };

/** The working tree as a git tree object, or why there is none. */
export function snapshotCode(root: string): CodeSnapshot {
  if (!isGitRepository(root)) return { tree: null, head: null, branch: null, note: STATE_ONLY_NOTE };
  const { headSha, branch } = headInfo(root);
  const tree = snapshotTree(root);
  if (!tree) throw new Error('git could not snapshot the working tree (run `git status` to see why)');
  return { tree, head: headSha, branch, note: null };
}

/**
 * Hold every lock a rollback needs: checkpoints, then state, then queue (the order every caller uses).
 * `stateTimeoutMs` bounds the wait for another process's state lock (a rollback refuses instead of waiting long).
 */
export function withCheckpointLocks<T>(store: Store, fn: () => Promise<T> | T, stateTimeoutMs?: number): Promise<T> {
  return store.locks.withLock(CHECKPOINT_LOCK, () =>
    store.locks.withLock('state', () => store.locks.withLock(QUEUE_LOCK, fn), stateTimeoutMs === undefined ? {} : { timeoutMs: stateTimeoutMs }),
  );
}

/**
 * Take a checkpoint. The state and queue locks are held only while the state is scanned (changed files are
 * read into memory then); storing copies, the git commit, publishing and retention run under the checkpoints
 * lock alone, so agents working the queue wait for a scan, not for a whole checkpoint.
 */
export async function createCheckpoint(project: Project, req: CreateRequest, coalesce = false): Promise<CreateOutcome> {
  const keep = project.config().checkpointRetention;
  const store = project.openStore();
  const code = snapshotCode(project.root);
  const out = await store.locks.withLock(CHECKPOINT_LOCK, async () => {
    const scan = await store.locks.withLock('state', () => store.locks.withLock(QUEUE_LOCK, () => scanState(store)));
    return createLocked(project.root, store, req, code, scan, keep, coalesce);
  });
  if ('created' in out) await auditCreated(store, out.created, out.pruned);
  return out;
}

/** The body of a checkpoint, under the checkpoints lock, from a scan of the state. */
export function createLocked(root: string, store: Store, req: CreateRequest, code: CodeSnapshot, scan: ScannedState, keep: number, coalesce: boolean): CreateOutcome {
  const catalog = readCatalog(store);
  if (coalesce) {
    const last = catalog.records.filter((r) => r.type === 'auto').at(-1);
    if (last && last.code.tree === code.tree && last.state.digest === scan.digest) return { unchanged: last.id };
  }
  const seq = catalog.maxSeq + 1;
  const id = checkpointId(seq);
  storeBlobs(store, scan);
  let commit: string | null = null;
  if (code.tree) {
    const c = commitSnapshot(root, code.tree, `loki-mode checkpoint ${id}: ${req.label}`, checkpointRef(id), code.head);
    if ('error' in c) throw new Error(`could not record the code snapshot in git: ${c.error}`);
    commit = c.commit;
  }
  const run = readRun(store);
  const record: CheckpointRecord = {
    id,
    seq,
    label: req.label,
    reason: req.reason,
    type: req.kind,
    trigger: req.trigger,
    runId: run?.runId ?? null,
    phase: run?.phase ?? null,
    createdAt: new Date().toISOString(),
    rollbackTo: req.rollbackTo ?? null,
    code: { commit, tree: code.tree, head: code.head, branch: code.branch, note: code.note },
    state: { digest: scan.digest, files: scan.entries.length, bytes: scan.bytes },
  };
  publish(store, record, scan.entries);
  if (record.type === 'auto') markAuto(store);
  return { created: record, pruned: prune(store, root, keep), skippedFiles: scan.skipped };
}

export async function auditCreated(store: Store, r: CheckpointRecord, pruned: string[]): Promise<void> {
  try {
    await store.audit.append('checkpoint.create', r.id, {
      kind: r.type,
      trigger: r.trigger,
      label: r.label,
      commit: r.code.commit,
      files: r.state.files,
      ...(pruned.length > 0 ? { pruned } : {}),
    });
  } catch (err) {
    // The checkpoint is already durable; failing now would make a retry take a second one.
    log.warn(`checkpoint ${r.id} taken but not audited: ${(err as Error).message}`);
  }
}

const TASK_GATE_LOCK = 'checkpoint-task';
const LAST_AUTO = `${CHECKPOINTS_DIR}/last-auto`;

/**
 * An automatic checkpoint (run start, completed task, before a phase transition). It never fails the
 * operation that triggered it: problems are logged on stderr and reported as null.
 *
 * After a completed task it is also coalesced in time, so a burst of completions (eight agents draining a
 * queue) costs a few checkpoints, not one each: none is taken while another process is taking one, or when the
 * last automatic one is less than a second old; the next completion, phase change or manual checkpoint covers
 * those completions. Returns the id taken, or the id of the newest automatic checkpoint when coalesced.
 */
export async function autoCheckpoint(project: Project, trigger: Exclude<CheckpointTrigger, 'manual' | 'rollback'>, label: string): Promise<string | null> {
  try {
    const req: CreateRequest = { kind: 'auto', trigger, label, reason: null };
    if (trigger !== 'task-complete') return outcomeId(await createCheckpoint(project, req, true));
    const { checkpointOnTask, checkpointTaskSpacingMs: spacing } = project.config();
    if (!checkpointOnTask) return null;
    const store = project.openStore();
    if (Date.now() - lastAutoAt(store) < spacing) return null;
    return await store.locks.withLock(
      TASK_GATE_LOCK,
      async () => (Date.now() - lastAutoAt(store) < spacing ? null : outcomeId(await createCheckpoint(project, req, true))),
      { timeoutMs: 0 },
    );
  } catch (err) {
    if (err instanceof LockTimeoutError) return null;
    log.warn(`automatic checkpoint (${trigger}) not taken: ${(err as Error).message}`);
    return null;
  }
}

function outcomeId(out: CreateOutcome): string {
  return 'created' in out ? out.created.id : out.unchanged;
}

/** When the newest automatic checkpoint was taken (the mtime of a marker file: one lstat, no reads). */
function lastAutoAt(store: Store): number {
  try {
    return fs.lstatSync(path.join(store.loki.root, LAST_AUTO)).mtimeMs;
  } catch {
    return 0;
  }
}

export function markAuto(store: Store): void {
  writeFileAtomic(store.loki, LAST_AUTO, '', { durable: false });
}
