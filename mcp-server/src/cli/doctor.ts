/** `loki doctor [--fix] [--json]`: is this machine and this project in a state Loki Mode can run in? */
import fs from 'node:fs';
import path from 'node:path';
import type { Project, RootSource } from '../project.js';
import { isExpectedError } from '../errors.js';
import { DB_FILE } from '../store/db.js';
import { bindingProblems } from '../store/bindings.js';
import type { Store } from '../store/store.js';
import type { RecordType } from '../store/records.js';
import { decodeTask } from '../queue/records.js';
import { decodeItem } from '../memory/items.js';
import { JOURNAL_KEY, JOURNAL_RECORD } from '../checkpoints/records.js';
import { DOCUMENT_TYPES } from '../run/documents.js';
import { listSessions } from '../run/sessions.js';
import { readRun } from '../run/state.js';
import { sessionLiveness } from '../run/records.js';
import { print, printJson } from './output.js';

type Level = 'ok' | 'warn' | 'fail';
interface Check {
  name: string;
  level: Level;
  detail: string;
}

const MIN_NODE = [22, 13] as const;
/** A write-ahead log larger than this is checkpointed by `--fix` (it only grows while readers hold it). */
const WAL_WARN_BYTES = 64 * 1024 * 1024;

export function doctorCommand(project: Project, rootSource: RootSource, fix: boolean, json: boolean): number {
  const checks: Check[] = [];
  const add = (name: string, level: Level, detail: string) => checks.push({ name, level, detail });

  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  add(
    'node',
    nodeOk ? 'ok' : 'fail',
    `Node ${process.versions.node}${nodeOk ? '' : `: loki-mode needs >= ${MIN_NODE.join('.')}`}`,
  );
  add('project root', 'ok', `${project.root} (from ${rootSource})`);

  const lokiPath = path.join(project.root, '.loki');
  let lokiState: fs.Stats | undefined;
  try {
    lokiState = fs.lstatSync(lokiPath);
  } catch {
    lokiState = undefined;
  }
  if (!lokiState) {
    add('.loki/', 'ok', 'not created yet (the first run creates it)');
  } else if (lokiState.isSymbolicLink() || !lokiState.isDirectory()) {
    add(
      '.loki/',
      'fail',
      `${lokiPath} is ${lokiState.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; loki-mode refuses it: move it aside`,
    );
  } else {
    inspectStore(project, fix, add);
  }

  const config = project.effectiveConfig();
  add('config', config.problems.length ? 'fail' : 'ok', config.problems.length ? config.problems.join('; ') : 'valid');

  const failed = checks.some((c) => c.level === 'fail');
  if (json) printJson({ ok: !failed, checks });
  else {
    for (const c of checks)
      print(`${c.level === 'ok' ? 'ok  ' : c.level === 'warn' ? 'warn' : 'FAIL'}  ${c.name.padEnd(14)} ${c.detail}`);
    print(failed ? '\nProblems found (FAIL lines above say how to fix each).' : '\nAll checks passed.');
  }
  return failed ? 1 : 0;
}

function inspectStore(project: Project, fix: boolean, add: (name: string, level: Level, detail: string) => void): void {
  let store: Store;
  try {
    store = project.openStore();
  } catch (err) {
    add(
      'database',
      'fail',
      isExpectedError(err)
        ? err.message
        : `cannot open .loki/${DB_FILE}: ${(err as Error).message}; move it aside (mv .loki/${DB_FILE} .loki/${DB_FILE}.bad) to start afresh`,
    );
    return;
  }
  const writable = (() => {
    try {
      fs.accessSync(store.loki.root, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  add(
    '.loki/',
    writable ? 'ok' : 'fail',
    writable ? store.loki.root : `${store.loki.root} is not writable by this user`,
  );

  const db = inspectDatabase(store, fix);
  add('database', db.level, db.detail);
  if (db.level === 'fail') return;

  const damaged = damagedRecords(store);
  if (damaged.length > 0) {
    add(
      'records',
      'fail',
      `${damaged.slice(0, 5).join('; ')}${damaged.length > 5 ? `; and ${damaged.length - 5} more` : ''}. Restore the state from a checkpoint (loki checkpoint list, then loki rollback ID)`,
    );
    return;
  }
  add('records', 'ok', 'every record matches its schema');
  const journal = store.records.read(JOURNAL_KEY, JOURNAL_RECORD);
  if (journal) {
    add(
      'rollback',
      'warn',
      `the rollback to ${journal.target} restored the state but not yet the files: the next loki tool call (or loki rollback ${journal.target}) finishes it`,
    );
  }
  const run = readRun(store);
  const sessions = listSessions(store);
  const live = sessions.filter((s) => sessionLiveness(s) === 'running').length;
  add(
    'run',
    'ok',
    run
      ? `${run.runId} ${run.status}, phase ${run.phase}, ${live} live session(s) of ${sessions.length}`
      : 'no run yet',
  );

  const audit = store.audit.verify();
  add(
    'audit chain',
    audit.ok ? 'ok' : 'fail',
    audit.ok
      ? `${audit.count} entries verified against ${audit.anchors.filter((a) => a.status === 'ok').length} anchor(s)`
      : `broken at entry ${audit.firstBreak!.index}: ${audit.firstBreak!.reason}. The log was changed outside loki-mode; keep .loki/loki.db as evidence and see \`loki audit verify\``,
  );
  const tampered = bindingProblems(store);
  add(
    'trust records',
    tampered.length === 0 ? 'ok' : 'fail',
    tampered.length === 0
      ? 'every run, verification, checklist, council and trust record matches what the audit log bound'
      : `${tampered.slice(0, 5).join('; ')}${tampered.length > 5 ? `; and ${tampered.length - 5} more` : ''}. Completion is refused until .loki/ is restored from a checkpoint (loki rollback) or a new run starts; keep .loki/loki.db as evidence`,
  );
}

/** integrity_check, the schema version and the size of the write-ahead log; `fix` checkpoints a large WAL. */
function inspectDatabase(store: Store, fix: boolean): { level: Level; detail: string } {
  let integrity: string[];
  try {
    integrity = store.db.all<{ integrity_check: string }>('PRAGMA integrity_check').map((r) => r.integrity_check);
  } catch (err) {
    return {
      level: 'fail',
      detail: `cannot read .loki/${DB_FILE}: ${(err as Error).message}; move it aside (mv .loki/${DB_FILE} .loki/${DB_FILE}.bad) to start afresh`,
    };
  }
  // The memory search index is derived from the items: damage to it alone is repaired, not a lost database.
  if (integrity.length > 0 && integrity.every((line) => /fts5|memory_fts/.test(line))) {
    if (!fix)
      return {
        level: 'fail',
        detail: `the memory search index is damaged (${integrity[0]}): rebuild it from the items with loki doctor --fix`,
      };
    rebuildMemoryIndex(store);
    integrity = store.db.all<{ integrity_check: string }>('PRAGMA integrity_check').map((r) => r.integrity_check);
  }
  if (integrity.length !== 1 || integrity[0] !== 'ok') {
    return {
      level: 'fail',
      detail: `.loki/${DB_FILE} is damaged (${integrity.slice(0, 3).join('; ')}); restore it from a checkpoint (loki rollback) or move it aside to start afresh`,
    };
  }
  let walBytes = 0;
  try {
    walBytes = fs.statSync(`${store.db.file}-wal`).size;
  } catch {
    walBytes = 0;
  }
  let wal = `WAL ${(walBytes / 1024).toFixed(0)} KiB`;
  const made = store.db.all<{ key: string; value: string }>(
    "SELECT key, value FROM meta WHERE key IN ('created_by', 'migrated_by') ORDER BY key",
  );
  const origin = made
    .map((m) => `${m.key === 'created_by' ? 'created by' : 'migrated by'} loki-mode ${m.value}`)
    .join(', ');
  const schema = `schema ${store.db.version()}${origin ? ` (${origin})` : ''}`;
  if (walBytes > WAL_WARN_BYTES) {
    if (!fix)
      return { level: 'warn', detail: `${schema}, integrity ok, ${wal}: run \`loki doctor --fix\` to checkpoint it` };
    store.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    wal += ', checkpointed';
  }
  return { level: 'ok', detail: `${schema}, integrity ok, ${wal}` };
}

/** The documents and tasks that do not match their schema (changed outside loki-mode), each named. */
function damagedRecords(store: Store): string[] {
  const types = new Map<string, RecordType<unknown>>(DOCUMENT_TYPES.map((t) => [t.kind, t]));
  const problems: string[] = [];
  for (const { key, kind } of store.db.all<{ key: string; kind: string }>('SELECT key, kind FROM docs ORDER BY key')) {
    const type = types.get(kind);
    if (!type) {
      problems.push(
        `the record "${key}" in .loki/loki.db has an unknown kind "${kind}": it was changed outside loki-mode`,
      );
      continue;
    }
    try {
      store.records.read(key, type);
    } catch (err) {
      problems.push(isExpectedError(err) ? err.message : (err as Error).message);
    }
  }
  for (const row of store.db.all<{ id: string; body: string }>('SELECT id, body FROM tasks ORDER BY seq')) {
    try {
      decodeTask(row);
    } catch (err) {
      problems.push(isExpectedError(err) ? err.message : (err as Error).message);
    }
  }
  for (const row of store.db.all<{ id: string; body: string }>('SELECT id, body FROM memory ORDER BY rid')) {
    const r = decodeItem(row);
    if ('problem' in r) problems.push(r.problem);
  }
  return problems;
}

/** Index every memory item again from its body (the index is contentless: the items are the source). */
function rebuildMemoryIndex(store: Store): void {
  store.mutate(
    () => {
      store.db.run("INSERT INTO memory_fts (memory_fts) VALUES ('delete-all')");
      return store.db.run(
        'INSERT INTO memory_fts (rowid, title, tags, summary, body) SELECT rid, title, tags, summary, body FROM memory_text',
      ).changes;
    },
    (n) => ({ action: 'memory.reindex', data: { items: n, by: 'loki doctor --fix' } }),
  );
}
