/**
 * Tamper evidence for the trust records (store/records.ts BOUND_KINDS): the audit log binds every write of one
 * by the sha256 of the text stored, so the records must be exactly what the chain says was last written. A row
 * edited, added or deleted with sqlite3 (or any tool but loki-mode) is found here by name.
 *
 * What this cannot catch, and docs/trust.md says: a same-user process that rewrites the records, the chain and
 * both anchors consistently. The chain itself is checked by AuditLog.verify; callers check both.
 */
import { bodyHash } from './records.js';
import type { Store } from './store.js';

/** The audit action that adopts the trust records a database held before bindings existed (0.2 and older). */
const ADOPT = 'records.adopt';
/** meta key set once the audit log binds records (a shortcut for later opens; see adoptUnboundRecords). */
export const BOUND_FLAG = 'bindings';

/**
 * Bind the trust records of a database written before bindings existed, once, in one audited transaction.
 * Whether it was done is read from the audit log itself (an entry cannot be removed without breaking the
 * chain), never from a flag a shell could delete to have tampered records adopted.
 */
export function adoptUnboundRecords(store: Store): void {
  // A shortcut only, for every open of a database in use (each hook opens it): deleting the flag sends the next
  // open back to the audit log, which decides.
  if (store.db.get('SELECT 1 AS x FROM meta WHERE key = ?', BOUND_FLAG)) return;
  // Newest first: in a database in use the last few entries bind something, so this reads a row or two.
  const hasBindings = () =>
    store.db.get("SELECT 1 AS x FROM audit WHERE data ->> '$.records' IS NOT NULL ORDER BY seq DESC LIMIT 1") !==
    undefined;
  // Bound already (the flag was removed: Store.tx sets it again with the next binding), or nothing to adopt.
  if (hasBindings() || !store.records.hasBoundRows()) return;
  store.tx(() => {
    if (hasBindings()) return;
    const records = Object.fromEntries([...store.records.boundRows()].map(([key, r]) => [key, bodyHash(r.body)]));
    store.audit.append(ADOPT, undefined, { records, note: 'trust records present before bindings existed' });
    store.db.run('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)', BOUND_FLAG, 'bound');
  });
}

/** Every trust record that does not match what the audit log last bound for it, in words (empty: all match). */
export function bindingProblems(store: Store): string[] {
  const bound = new Map<string, { hash: string | null; seq: number }>();
  const problems: string[] = [];
  const broken = new Set<string>();
  const entries = store.db.all<{ seq: number; action: string; records: string }>(
    "SELECT seq, action, data ->> '$.records' AS records FROM audit WHERE data ->> '$.records' IS NOT NULL ORDER BY seq",
  );
  for (const e of entries) {
    let records: Record<string, unknown>;
    try {
      records = JSON.parse(e.records) as Record<string, unknown>;
    } catch {
      continue;
    }
    for (const [key, value] of Object.entries(records)) {
      // Adopted records (records.adopt) are bound as they were found: a hash, no text before.
      if (typeof value === 'string' || value === null) {
        bound.set(key, { hash: value, seq: e.seq });
        continue;
      }
      if (!Array.isArray(value) || value.length !== 2) continue;
      const [before, after] = value as [string | null, string | null];
      const last = bound.get(key)?.hash ?? null;
      // The server found the record other than it had left it: changed (or added, or deleted) in between.
      if (before !== last && !broken.has(key)) {
        broken.add(key);
        problems.push(
          `the record "${key}" was ${last === null ? 'added' : before === null ? 'deleted' : 'changed'} outside loki-mode before audit entry #${e.seq} (the server then wrote it again)`,
        );
      }
      bound.set(key, { hash: after, seq: e.seq });
    }
  }
  const seen = new Set<string>();
  for (const [key, r] of store.records.boundRows()) {
    seen.add(key);
    const b = bound.get(key);
    if (!b || b.hash === null)
      problems.push(`the ${r.kind} record "${key}" was added outside loki-mode (the audit log never bound it)`);
    else if (b.hash !== bodyHash(r.body))
      problems.push(
        `the ${r.kind} record "${key}" was changed outside loki-mode (it no longer matches audit entry #${b.seq})`,
      );
  }
  for (const [key, b] of bound)
    if (b.hash !== null && !seen.has(key))
      problems.push(`the record "${key}" was deleted outside loki-mode (audit entry #${b.seq} bound it)`);
  return problems;
}

/**
 * Everything that says the state was changed behind the server's back: a broken audit chain or anchor, and
 * trust records that do not match their bindings. Completion refuses while there is any; proof verify and
 * doctor report them.
 */
export function tamperEvidence(store: Store): string[] {
  const chain = store.audit.verify();
  const problems: string[] = [];
  if (!chain.ok)
    problems.push(
      `the audit log does not verify (${chain.firstBreak ? `entry ${chain.firstBreak.index}: ${chain.firstBreak.reason}` : 'its anchor does not match'}): run loki audit verify`,
    );
  return [...problems, ...bindingProblems(store), ...unauditedCompletions(store)];
}

/**
 * Tasks marked completed that no `task.complete` entry of the audit log completed: a task row set to completed
 * behind the server's back (the queue's rows are not bound like the trust records, but a task reaches
 * `completed` only through loki_task_complete, which audits it in the same transaction).
 */
function unauditedCompletions(store: Store): string[] {
  const rows = store.db.all<{ id: string }>(
    `SELECT id FROM tasks WHERE status = 'completed'
       AND id NOT IN (SELECT target FROM audit WHERE action = 'task.complete' AND target IS NOT NULL)
     ORDER BY seq LIMIT 21`,
  );
  if (rows.length === 0) return [];
  const ids = rows.slice(0, 20).map((r) => r.id);
  return [
    `task(s) ${ids.join(', ')}${rows.length > 20 ? ', ...' : ''} are marked completed, but no loki_task_complete completed them (the audit log has no task.complete entry): the task rows were changed behind the server's back: put them back as they were (or loki_rollback to a checkpoint) and complete each task with loki_task_complete`,
  ];
}
