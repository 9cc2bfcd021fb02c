/**
 * Taking a checkpoint: the working tree as a git commit and the database as a copy (VACUUM INTO reads one
 * committed moment and holds no lock, so agents keep working meanwhile), then one short transaction that records
 * it, points its git ref at the commit, applies retention and appends the audit entry. Automatic checkpoints are
 * coalesced: when neither the code nor the state changed since the newest automatic one, none is taken.
 */
import fs from 'node:fs';
import { checkpointTextProblem, type CheckpointKind, type CheckpointTrigger } from '../domain/checkpoints.js';
import { scrubText } from '../domain/secrets.js';
import { UsageError } from '../errors.js';
import { log } from '../log.js';
import type { Project } from '../project.js';
import { commitTree, headInfo, isGitRepository, snapshotTree } from '../run/git.js';
import { RUN_FILE, RUN_RECORD } from '../run/records.js';
import { safeParse } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { newestAuto, publishLocked, removePruned } from './catalog.js';
import { GATE_KEY, GATE_RECORD, type CheckpointBody, type CheckpointRecord } from './records.js';
import { attach, copyDatabase, stateDigest, stateRows, type StagedSnapshot } from './state.js';

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
  | { created: CheckpointRecord; pruned: string[] }
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
 * The code snapshot as a commit (parent: HEAD), made before the checkpoint's transaction: nothing refers to it
 * until that transaction points the checkpoint's ref at it, and git keeps an unreferenced object for weeks.
 */
export function commitCode(root: string, code: CodeSnapshot, label: string): string | null {
  if (!code.tree) return null;
  const c = commitTree(root, code.tree, `loki-mode checkpoint: ${label}`, code.head);
  if ('error' in c) throw new Error(`could not record the code snapshot in git: ${c.error}`);
  return c.commit;
}

/** A checkpoint's record from what was taken; `run` is the run its state snapshot holds. */
export function checkpointBody(
  req: CreateRequest,
  code: CodeSnapshot,
  commit: string | null,
  state: { digest: string; rows: number; bytes: number },
  run: { runId: string; phase: CheckpointBody['phase'] } | undefined,
  costMs: number,
): CheckpointBody {
  return {
    label: req.label,
    reason: req.reason,
    type: req.kind,
    trigger: req.trigger,
    runId: run?.runId ?? null,
    phase: run?.phase ?? null,
    createdAt: new Date().toISOString(),
    costMs: Math.max(0, Math.round(costMs)),
    rollbackTo: req.rollbackTo ?? null,
    code: { commit, tree: code.tree, head: code.head, branch: code.branch, note: code.note },
    state,
  };
}

/** The run (its id and phase) held by the database attached as `alias`. */
export function runIn(store: Store, alias: string): { runId: string; phase: CheckpointBody['phase'] } | undefined {
  const row = store.db.get<{ body: string }>(
    `SELECT body FROM ${alias}.docs WHERE key = ? AND kind = ?`,
    RUN_FILE,
    RUN_RECORD.kind,
  );
  if (!row) return undefined;
  const parsed = safeParse(RUN_RECORD.schema, JSON.parse(row.body));
  return parsed.success ? parsed.data : undefined;
}

/** Take a checkpoint (`coalesce`: not when the newest automatic one already holds this code and state). */
export function createCheckpoint(project: Project, req: CreateRequest, coalesce = false): CreateOutcome {
  // Refused before anything is written: git objects and .loki/ itself included.
  const refused = checkpointTextProblem(req.label, req.reason);
  if (refused) throw new UsageError(refused);
  // The label becomes a git commit message, kept in the repository's objects as long as the checkpoint's ref: the
  // certain secrets are scrubbed whoever calls (a tool's input and the CLI's were scrubbed in full already; the
  // server's own labels name runs and tasks, whose ids look random and stay).
  const certain = (text: string) => scrubText(text, { randomLooking: false }).text;
  req = { ...req, label: certain(req.label), reason: req.reason === null ? null : certain(req.reason) };
  const started = performance.now();
  const keep = project.config().checkpointRetention;
  const store = project.openStore();
  const code = snapshotCode(project.root);
  if (coalesce) {
    const last = newestAuto(store);
    // Read outside a transaction, the tables may come from two commits: that digest matches no checkpoint, and
    // one is taken, which is all a torn read can cause here.
    if (last && last.code.tree === code.tree && last.state.digest === stateDigest(stateRows(store, 'main')))
      return { unchanged: last.id };
  }
  const commit = commitCode(project.root, code, req.label);
  const staged = copyDatabase(store);
  let out: ReturnType<typeof publishLocked>;
  try {
    const { rows, run } = readStaged(store, staged);
    const body = checkpointBody(
      req,
      code,
      commit,
      { digest: stateDigest(rows), rows: rows.length, bytes: staged.bytes },
      run,
      performance.now() - started,
    );
    out = store.tx(() => publishLocked(store, project.root, body, staged, keep));
  } catch (err) {
    fs.rmSync(staged.file, { force: true });
    throw err;
  }
  removePruned(store, project.root, out.pruned);
  return { created: out.record, pruned: out.pruned };
}

/** The state rows and the run of a staged copy: its digest is taken from the copy itself. */
function readStaged(store: Store, staged: StagedSnapshot) {
  const detach = attach(store, staged.file, 'cp_new');
  try {
    return { rows: stateRows(store, 'cp_new'), run: runIn(store, 'cp_new') };
  } finally {
    detach();
  }
}

/**
 * Completed-task checkpoints are at least this many times as far apart as the last automatic one took, so that
 * as the state grows they do not take over the agents' time.
 */
const COST_SPACING_FACTOR = 10;

/**
 * An automatic checkpoint (run start, completed task, before a phase transition). It never fails the
 * operation that triggered it: problems are logged on stderr and reported as null.
 *
 * After a completed task it is also coalesced in time, so a burst of completions (eight agents draining a
 * queue) costs a few checkpoints, not one each: none is taken while the last automatic one, or the one another
 * process has started, is younger than the spacing (`checkpoints.taskSpacingSeconds`; 0 takes one after every
 * task), or the last one is younger than ten times what it cost; the next completion, phase change or manual
 * checkpoint covers those completions. Returns the id taken, or the id of the newest automatic checkpoint when
 * coalesced.
 */
export function autoCheckpoint(
  project: Project,
  trigger: Exclude<CheckpointTrigger, 'manual' | 'rollback'>,
  label: string,
): string | null {
  try {
    if (trigger === 'task-complete') {
      const { checkpointOnTask, checkpointTaskSpacingMs: spacing } = project.config();
      if (!checkpointOnTask) return null;
      if (spacing > 0 && !claimTurn(project.openStore(), spacing, project.actor)) return null;
    }
    const out = createCheckpoint(project, { kind: 'auto', trigger, label, reason: null }, true);
    return 'created' in out ? out.created.id : out.unchanged;
  } catch (err) {
    log.warn(`automatic checkpoint (${trigger}) not taken: ${(err as Error).message}`);
    return null;
  }
}

/**
 * Whether this process takes the completed-task checkpoint that is due. The start is recorded in the same
 * transaction as the decision, so of several agents completing tasks together one takes it; the common answer
 * (too soon) is read without taking the write lock.
 */
function claimTurn(store: Store, spacingMs: number, actor: string): boolean {
  const now = Date.now();
  if (tooSoon(store, spacingMs, now)) return false;
  return store.tx(() => {
    if (tooSoon(store, spacingMs, now)) return false;
    store.records.write(GATE_KEY, GATE_RECORD, { startedAt: now, actor });
    return true;
  });
}

function tooSoon(store: Store, spacingMs: number, now: number): boolean {
  const gate = store.records.read(GATE_KEY, GATE_RECORD);
  if (gate && now - gate.startedAt < spacingMs) return true;
  const last = newestAuto(store);
  if (!last) return false;
  const age = now - Date.parse(last.createdAt);
  return age < spacingMs || age < COST_SPACING_FACTOR * last.costMs;
}
