/**
 * Checkpoints as data and pure rules: which tables and documents of `.loki/loki.db` a checkpoint holds and a
 * rollback restores, which checkpoint `latest` means, which ones retention removes, and what a rollback changes.
 * Nothing here touches the database, the file system or git.
 */

export const CHECKPOINT_KINDS = ['manual', 'auto', 'pre-rollback'] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

export const CHECKPOINT_TRIGGERS = ['manual', 'run-start', 'task-complete', 'phase-advance', 'rollback'] as const;
export type CheckpointTrigger = (typeof CHECKPOINT_TRIGGERS)[number];

/**
 * Tables a rollback restores: the run's state. `docs` holds the run (and the runs a restart archived), the trust
 * state, checklists, councils, verifications and the hooks' counters; `tasks` the queue; `task_archive` the
 * queues of earlier runs (a rollback to before a restart brings that run's queue back with it).
 */
export const RESTORED_TABLES = ['docs', 'tasks', 'task_archive'] as const;

/**
 * Tables a rollback never restores. The audit log is history: the rollback itself is appended to it. The
 * checkpoints are how the rollback is undone (the pre-rollback checkpoint is one of them). `meta` says which
 * loki-mode created and last migrated this database file, a fact about the file that no rollback changes.
 */
export const KEPT_TABLES = ['audit', 'checkpoints', 'meta'] as const;

/**
 * Memory (every table whose name starts with this, the search index's own tables included) survives a
 * rollback: memories are lessons, and the lessons of the work a rollback throws away (what failed, and why)
 * are the ones the agents need most afterwards. A lesson that turns out wrong is superseded like any other.
 */
export const KEPT_TABLE_PREFIX = 'memory';

/** What a rollback does with a table; undefined for a table nobody has decided about (a test refuses that). */
export function tableRole(name: string): 'restored' | 'kept' | undefined {
  if ((RESTORED_TABLES as readonly string[]).includes(name)) return 'restored';
  if ((KEPT_TABLES as readonly string[]).includes(name) || name.startsWith(KEPT_TABLE_PREFIX)) return 'kept';
  return undefined;
}

/**
 * Documents of the restored `docs` table that a rollback keeps as they are, and that are no part of a
 * checkpoint's state: the live sessions (a rollback does not change which agents are connected), memory kept
 * as documents (see KEPT_TABLE_PREFIX), and the checkpoints' own bookkeeping (the journal of the rollback under
 * way, and when the last completed-task checkpoint was started).
 */
export const KEPT_DOC_KINDS = ['session', 'memory', 'rollback-journal', 'checkpoint-gate'] as const;

/**
 * History: documents a checkpoint holds (its digest covers them) but a rollback never replaces. Whatever they are
 * when the rollback runs, they stay: the ones written after the target are not removed, none is changed back. So
 * a rollback cannot erase a verification (a red one included), a council, its votes or a rejection, nor a
 * person's waiver, and the ids of verifications and councils are never handed out twice. The tests the baseline
 * had, once recorded (`baseline-tests`), are history too, and so are the alerts that fired (`notify/<run>`): a rollback
 * does not make an alert the person already got fire again. Each key names its run (`verify/<run>/...`,
 * `council/<run>/...`, `waiver/<run>/...`), so another run's history never gets in the way.
 */
export const HISTORY_DOC_KINDS = ['verification', 'baseline-tests', 'council', 'waiver', 'notify'] as const;

/**
 * The trust state (`trust`: the findings of refused completions, when completion was claimed, a forced review,
 * stagnation) is one document for the active run. A rollback within that run keeps it as it is, like the other
 * history; a rollback to another run's state (from before a restart) brings that run's trust state back with it.
 */
export const RUN_HISTORY_DOC_KIND = 'trust';

/** The document kinds a rollback leaves as they are, besides KEPT_DOC_KINDS: `trustRun` is the run each trust state names. */
export function historyKinds(trustRun: { current: string | null; target: string | null }): string[] {
  const sameRun = trustRun.current !== null && trustRun.current === trustRun.target;
  return [...HISTORY_DOC_KINDS, ...(sameRun ? [RUN_HISTORY_DOC_KIND] : [])];
}

/** One row of captured state: `key` names it (`<table>/<primary key>`), `sha256` is the hash of its columns. */
export interface StateRow {
  key: string;
  sha256: string;
  size: number;
  /** A document's kind (docs rows only); not part of the digest. */
  kind?: string;
}

/** The rows a rollback replaces: all but the documents of the kinds it keeps as history. */
export function withoutHistory(rows: readonly StateRow[], history: readonly string[]): StateRow[] {
  return rows.filter((r) => r.kind === undefined || !history.includes(r.kind));
}

/** The identity of one checkpoint for the selection rules. */
export interface CheckpointRef {
  id: string;
  seq: number;
  type: CheckpointKind;
}

export const checkpointId = (seq: number): string => `cp-${seq}`;

/**
 * The checkpoint `latest` names: the newest by sequence number that is not a pre-rollback checkpoint, so two
 * `latest` rollbacks in a row do not undo each other.
 */
export function selectLatest<T extends CheckpointRef>(all: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const c of all) if (c.type !== 'pre-rollback' && (!best || c.seq > best.seq)) best = c;
  return best;
}

/**
 * Ids that retention removes: beyond the newest `keep` automatic checkpoints, and beyond the newest `keep`
 * pre-rollback ones (counted separately, so a burst of automatic checkpoints never removes the way back from a
 * rollback). Manual checkpoints are never removed.
 */
export function selectPrune(all: readonly CheckpointRef[], keep: number): string[] {
  const out: string[] = [];
  for (const kind of ['auto', 'pre-rollback'] as const) {
    const ofKind = all.filter((c) => c.type === kind).sort((a, b) => b.seq - a.seq);
    out.push(...ofKind.slice(Math.max(0, keep)).map((c) => c.id));
  }
  return out;
}

export interface ChangeSet {
  added: string[];
  modified: string[];
  removed: string[];
}

/** What turns state `from` into state `to`, by row key. */
export function diffState(from: readonly StateRow[], to: readonly StateRow[]): ChangeSet {
  const before = new Map(from.map((e) => [e.key, e.sha256]));
  const after = new Map(to.map((e) => [e.key, e.sha256]));
  const added: string[] = [];
  const modified: string[] = [];
  const removed: string[] = [];
  for (const [k, sha] of after) {
    const old = before.get(k);
    if (old === undefined) added.push(k);
    else if (old !== sha) modified.push(k);
  }
  for (const k of before.keys()) if (!after.has(k)) removed.push(k);
  return { added: added.sort(), modified: modified.sort(), removed: removed.sort() };
}

/**
 * Parse `git diff-tree -r -z --no-renames --name-status A B`: NUL-separated status and path pairs. A type
 * change (file to symlink) counts as modified.
 */
export function parseNameStatus(out: string): ChangeSet {
  const fields = out.split('\0');
  const set: ChangeSet = { added: [], modified: [], removed: [] };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const status = fields[i]!.trim();
    const file = fields[i + 1]!;
    if (status === '' || file === '') continue;
    if (status.startsWith('A')) set.added.push(file);
    else if (status.startsWith('D')) set.removed.push(file);
    else set.modified.push(file);
  }
  return set;
}

export interface ChangeSummary {
  added: number;
  modified: number;
  removed: number;
  /** At most `cap` paths, each prefixed with "+", "~" or "-". */
  paths: string[];
  truncated: boolean;
}

export function summarizeChanges(set: ChangeSet, cap = 20): ChangeSummary {
  const all = [
    ...set.added.map((p) => `+ ${p}`),
    ...set.modified.map((p) => `~ ${p}`),
    ...set.removed.map((p) => `- ${p}`),
  ];
  return {
    added: set.added.length,
    modified: set.modified.length,
    removed: set.removed.length,
    paths: all.slice(0, cap),
    truncated: all.length > cap,
  };
}

/** The text a state digest is the sha256 of: one line per row, in key order, whatever order they came in. */
export function stateDigestText(rows: readonly StateRow[]): string {
  return [...rows]
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => `${e.sha256} ${e.size} ${e.key}\n`)
    .join('');
}

/**
 * Why a checkpoint's label or reason cannot be taken, or null. Both go into a git commit message and onto
 * terminals: git refuses a NUL in a message, and a terminal acts on the other control characters. A label is one
 * line; a reason may also hold line breaks. Checked before anything is written, so a refusal leaves no trace.
 */
export function checkpointTextProblem(label: string, reason: string | null): string | null {
  const found = (text: string, allowed: string): number =>
    // eslint-disable-next-line no-control-regex
    [...text].findIndex((c) => /[\u0000-\u001f\u007f]/.test(c) && !allowed.includes(c));
  const inLabel = found(label, '\t');
  if (inLabel >= 0)
    return `label must be one line of plain text: character ${inLabel + 1} is the control character U+${codeOf(label, inLabel)}; remove it`;
  const inReason = reason === null ? -1 : found(reason, '\t\n\r');
  if (inReason >= 0)
    return `reason must be plain text: character ${inReason + 1} is the control character U+${codeOf(reason!, inReason)}; remove it`;
  return null;
}

const codeOf = (text: string, index: number): string =>
  [...text][index]!.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
