/**
 * Checkpoints as data and pure rules: what part of `.loki/` a checkpoint holds, which checkpoint `latest`
 * means, which ones retention removes, and what a rollback changes. Nothing here touches the file system.
 */

export const CHECKPOINT_KINDS = ['manual', 'auto', 'pre-rollback'] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

export const CHECKPOINT_TRIGGERS = ['manual', 'run-start', 'task-complete', 'phase-advance', 'rollback'] as const;
export type CheckpointTrigger = (typeof CHECKPOINT_TRIGGERS)[number];

/**
 * Top-level entries of `.loki/` that are not run state: the audit log (history must survive a rollback), the
 * checkpoints themselves, locks, memory (learnings survive a rollback), what people write (config.yaml and the
 * PAUSE/STOP/HUMAN_INPUT.md signals: a rollback must not undo the user's current wishes), diagnostics
 * (quarantine/, logs/) and the live sessions' heartbeats.
 */
export const STATE_EXCLUDED = new Set([
  'audit',
  'checkpoints',
  'locks',
  'memory',
  'quarantine',
  'logs',
  'sessions',
  'config.yaml',
  'PAUSE',
  'STOP',
  'HUMAN_INPUT.md',
]);

/** Files inside captured folders that are hints, not state: the queue's change feed is restarted on restore. */
export const STATE_EXCLUDED_FILES = new Set(['queue/changes.log']);

/** True when `.loki/<rel>` (a relative path with "/" separators) belongs to a checkpoint's state. */
export function inStateScope(rel: string): boolean {
  const parts = rel.split('/');
  if (STATE_EXCLUDED.has(parts[0]!) || STATE_EXCLUDED_FILES.has(rel)) return false;
  // Temp files of atomic writes (".name.<hex>.tmp") that a crash left behind.
  return !parts.some((p) => p.startsWith('.') && p.endsWith('.tmp'));
}

/** One file of captured state. */
export interface StateEntry {
  path: string;
  sha256: string;
  size: number;
}

/** The identity of one checkpoint for the selection rules. */
export interface CheckpointRef {
  id: string;
  seq: number;
  type: CheckpointKind;
}

export const checkpointId = (seq: number): string => `cp-${seq}`;

/**
 * The checkpoint `latest` names: the newest by sequence number (never by file time) that is not a
 * pre-rollback checkpoint, so two `latest` rollbacks in a row do not undo each other.
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

/** What turns state `from` into state `to`. */
export function diffState(from: readonly StateEntry[], to: readonly StateEntry[]): ChangeSet {
  const before = new Map(from.map((e) => [e.path, e.sha256]));
  const after = new Map(to.map((e) => [e.path, e.sha256]));
  const added: string[] = [];
  const modified: string[] = [];
  const removed: string[] = [];
  for (const [p, sha] of after) {
    const old = before.get(p);
    if (old === undefined) added.push(p);
    else if (old !== sha) modified.push(p);
  }
  for (const p of before.keys()) if (!after.has(p)) removed.push(p);
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
  const all = [...set.added.map((p) => `+ ${p}`), ...set.modified.map((p) => `~ ${p}`), ...set.removed.map((p) => `- ${p}`)];
  return { added: set.added.length, modified: set.modified.length, removed: set.removed.length, paths: all.slice(0, cap), truncated: all.length > cap };
}

/** A stable digest input for a state manifest (the caller hashes it). */
export function stateDigestText(entries: readonly StateEntry[]): string {
  return [...entries]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => `${e.sha256} ${e.size} ${e.path}\n`)
    .join('');
}
