/**
 * Taking a checkpoint: the working tree as a git snapshot (outside the locks: git can take a moment), then,
 * under the checkpoints lock, a scan of the `.loki/` state (its last step briefly holding the state and queue
 * locks too), the stored contents (one pack), the git ref, the record, retention, and the audit entry. Automatic checkpoints are coalesced: when neither the code nor the
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
import { readFileIfExists, writeFileAtomic } from '../store/fsx.js';
import { LockTimeoutError } from '../store/lock.js';
import type { Store } from '../store/store.js';
import { prune, publish, readCatalog, readManifest, type Catalog } from './catalog.js';
import { StoredContents } from './packs.js';
import { CHECKPOINTS_DIR, CHECKPOINT_LOCK, checkpointRef, type CheckpointRecord } from './records.js';
import { completeScan, prescanState, type ScannedState } from './state.js';

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
 * Take a checkpoint. Under the checkpoints lock: the state is read without the state and queue locks first,
 * then brought up to date while they are held (completeScan: what changed meanwhile), so agents working the
 * queue wait for a few reads, not for a whole scan; storing the contents, the git commit, publishing and
 * retention run under the checkpoints lock alone.
 */
export async function createCheckpoint(project: Project, req: CreateRequest, coalesce = false): Promise<CreateOutcome> {
  const keep = project.config().checkpointRetention;
  const store = project.openStore();
  const code = snapshotCode(project.root);
  const out = await store.locks.withLock(CHECKPOINT_LOCK, async () => {
    const base = storedBase(store);
    const pre = await prescanState(store, base.stored);
    const scan = await store.locks.withLock('state', () =>
      store.locks.withLock(QUEUE_LOCK, ({ recovered }) => completeScan(store, pre, recovered, base.stored)),
    );
    return createLocked(project.root, store, req, code, scan, keep, coalesce, base);
  });
  if ('created' in out) await auditCreated(store, out.created, out.pruned);
  return out;
}

/** The checkpoints as they are, and the contents the newest one has stored (reused, never written twice). */
export interface Base {
  catalog: Catalog;
  stored: StoredContents;
}

/** Under the checkpoints lock (the catalog does not change until it is released). */
export function storedBase(store: Store): Base {
  const catalog = readCatalog(store);
  const newest = catalog.records.at(-1);
  const manifest = newest ? readManifest(store, newest) : undefined;
  return { catalog, stored: manifest && 'entries' in manifest ? StoredContents.of(store, manifest.entries, manifest.scannedAt) : StoredContents.none() };
}

/** The body of a checkpoint, under the checkpoints lock, from a scan of the state made with `base.stored`. */
export function createLocked(root: string, store: Store, req: CreateRequest, code: CodeSnapshot, scan: ScannedState, keep: number, coalesce: boolean, base: Base): CreateOutcome {
  const { catalog } = base;
  if (coalesce) {
    const last = catalog.records.filter((r) => r.type === 'auto').at(-1);
    if (last && last.code.tree === code.tree && last.state.digest === scan.digest) return { unchanged: last.id };
  }
  const seq = catalog.maxSeq + 1;
  const id = checkpointId(seq);
  const entries = base.stored.store(store, scan.entries, scan.contents, scan.identities);
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
  publish(store, record, { files: entries, scannedAt: scan.startedAt });
  if (record.type === 'auto') markAuto(store, Date.now() - scan.startedAt);
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
 * Completed-task checkpoints are at least this many times as far apart as the last automatic one took (wall time
 * from the start of its scan), so that as the state grows they do not take over the agents' time.
 */
const COST_SPACING_FACTOR = 10;
/** The queue owner takes a completed-task checkpoint itself only when none was taken for this long. */
const OWNER_DEFERS_MS = 30_000;

/**
 * An automatic checkpoint (run start, completed task, before a phase transition). It never fails the
 * operation that triggered it: problems are logged on stderr and reported as null.
 *
 * After a completed task it is also coalesced in time, so a burst of completions (eight agents draining a
 * queue) costs a few checkpoints, not one each: none is taken while another process is taking one, or when the
 * last automatic one is younger than the spacing (`checkpoints.taskSpacingSeconds`, and at least ten times what
 * the last one took; a spacing of 0 takes one after every task); the next completion, phase change or manual
 * checkpoint covers those completions. The process that owns the queue leaves them to the agents it serves while
 * it serves any, so their requests never wait for a checkpoint's reads (unless none was taken for 30 s). Returns the id taken, or the id of the newest automatic checkpoint when
 * coalesced.
 */
export async function autoCheckpoint(project: Project, trigger: Exclude<CheckpointTrigger, 'manual' | 'rollback'>, label: string): Promise<string | null> {
  try {
    const req: CreateRequest = { kind: 'auto', trigger, label, reason: null };
    if (trigger !== 'task-complete') return outcomeId(await createCheckpoint(project, req, true));
    const { checkpointOnTask, checkpointTaskSpacingMs: spacing } = project.config();
    if (!checkpointOnTask) return null;
    const store = project.openStore();
    if (tooSoon(store, spacing)) return null;
    // The queue owner leaves them to the agents it serves (its event loop answers their claims), unless overdue.
    if (project.servesQueueClients() && tooSoon(store, OWNER_DEFERS_MS)) return null;
    return await store.locks.withLock(TASK_GATE_LOCK, async () => (tooSoon(store, spacing) ? null : outcomeId(await createCheckpoint(project, req, true))), {
      timeoutMs: 0,
    });
  } catch (err) {
    if (err instanceof LockTimeoutError) return null;
    log.warn(`automatic checkpoint (${trigger}) not taken: ${(err as Error).message}`);
    return null;
  }
}

function outcomeId(out: CreateOutcome): string {
  return 'created' in out ? out.created.id : out.unchanged;
}

/**
 * The newest automatic checkpoint is too recent for a completed-task one: one lstat of a marker file (its mtime
 * is when that checkpoint was taken), and a read of it (what it cost) only once the spacing has passed.
 */
function tooSoon(store: Store, spacingMs: number): boolean {
  if (spacingMs === 0) return false;
  let at: number;
  try {
    at = fs.lstatSync(path.join(store.loki.root, LAST_AUTO)).mtimeMs;
  } catch {
    return false;
  }
  const age = Date.now() - at;
  if (age < spacingMs) return true;
  let costMs = 0;
  try {
    costMs = Number(readFileIfExists(store.loki, LAST_AUTO, 64)?.toString('utf8')) || 0;
  } catch {
    /* unreadable: its cost is unknown, the configured spacing applies */
  }
  return age < COST_SPACING_FACTOR * costMs;
}

/** Record that an automatic checkpoint was taken now, and what it cost (ms). */
export function markAuto(store: Store, costMs: number): void {
  writeFileAtomic(store.loki, LAST_AUTO, String(Math.max(0, Math.round(costMs))), { durable: false });
}
