/**
 * The state part of a checkpoint. Taking it: a copy of `.loki/loki.db` made by VACUUM INTO (the whole database
 * as of one committed moment), through a read-only connection of its own, so it can also be made while this
 * process holds the write lock (a rollback copies exactly the state it is about to replace). What a rollback
 * restores from it: the rows of domain RESTORED_TABLES, less the documents of KEPT_DOC_KINDS, identified by
 * their primary key and hashed column by column, so that a checkpoint's digest is the digest of the very rows it
 * holds. Restoring: one transaction deletes those rows and inserts the snapshot's, except the history documents
 * (domain HISTORY_DOC_KINDS), which stay as they are.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  KEPT_DOC_KINDS,
  RESTORED_TABLES,
  RUN_HISTORY_DOC_KIND,
  stateDigestText,
  type StateRow,
} from '../domain/checkpoints.js';
import { PathError } from '../errors.js';
import { Db } from '../store/db.js';
import { fsyncDir } from '../store/fsx.js';
import type { Store } from '../store/store.js';
import { CHECKPOINTS_DIR, snapshotFile } from './records.js';

/** Which rows of each restored table are state (every row, but for the documents a rollback keeps). */
const STATE_ROWS: Record<(typeof RESTORED_TABLES)[number], string> = {
  docs: `kind NOT IN (${KEPT_DOC_KINDS.map((k) => `'${k}'`).join(', ')})`,
  tasks: 'true',
  task_archive: 'true',
};

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** A database copy not yet published: `.loki/checkpoints/.snapshot.<hex>.tmp` (swept when a crash leaves it). */
export interface StagedSnapshot {
  file: string;
  bytes: number;
}

/**
 * Copy the database, as of its last commit, into a new private file. The copy is fsync'd (VACUUM INTO does not)
 * before anything refers to it.
 */
export function copyDatabase(store: Store): StagedSnapshot {
  const dir = store.loki.child(CHECKPOINTS_DIR, true);
  const file = path.join(dir.root, `.snapshot.${crypto.randomBytes(6).toString('hex')}.tmp`);
  // Created private and empty first (VACUUM INTO writes into an empty file): SQLite would create it 0644.
  fs.closeSync(
    fs.openSync(
      file,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o600,
    ),
  );
  let reader: Db | undefined;
  try {
    reader = Db.open(store.loki.root, { readOnly: true });
    reader.snapshotTo(file);
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      fs.fsyncSync(fd);
      return { file, bytes: fs.fstatSync(fd).size };
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    fs.rmSync(file, { force: true });
    throw err;
  } finally {
    reader?.close();
  }
}

/**
 * Inside the transaction that publishes checkpoint `id`: move the staged copy to `checkpoints/<id>/loki.db`.
 * A folder already there is what an attempt at this id left when its transaction did not commit.
 */
export function placeSnapshot(store: Store, staged: StagedSnapshot, id: string): void {
  const dir = store.loki.child(CHECKPOINTS_DIR, false);
  removeSnapshot(store, id);
  fs.mkdirSync(path.join(dir.root, id), { mode: 0o700 });
  fs.renameSync(staged.file, path.join(store.loki.root, snapshotFile(id)));
  fsyncDir(path.join(dir.root, id));
  fsyncDir(dir.root);
}

/** Remove `checkpoints/<id>/` (nothing when it is not there). */
export function removeSnapshot(store: Store, id: string): void {
  let folder: string;
  try {
    folder = store.loki.resolve(`${CHECKPOINTS_DIR}/${id}`, { leaf: 'dir' }).absolute;
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return;
    throw err;
  }
  fs.rmSync(folder, { recursive: true, force: true });
}

/**
 * A private copy of a snapshot taken at an older schema, migrated to this one (the checkpoint's own file is never
 * changed). `dispose` removes the copy; a crash leaves it to the temp sweep.
 */
export function migratedCopy(store: Store, file: string): { file: string; dispose: () => void } {
  const dir = store.loki.child(CHECKPOINTS_DIR, false);
  const copy = path.join(dir.root, `.migrated.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const dispose = () => {
    for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) fs.rmSync(f, { force: true });
  };
  try {
    fs.copyFileSync(file, copy, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(copy, 0o600);
    Db.openFile(copy).close();
  } catch (err) {
    dispose();
    throw err;
  }
  return { file: copy, dispose };
}

/**
 * Attach the database file `file` read-only as `alias` (outside a transaction); returns the detach, which must
 * also run outside one.
 */
export function attach(store: Store, file: string, alias: string): () => void {
  store.db.run(`ATTACH ? AS ${alias}`, `${pathToFileURL(file).href}?mode=ro`);
  return () => store.db.exec(`DETACH ${alias}`);
}

/** The schema version of the database attached as `alias` (`main`: this one). */
export function schemaVersion(store: Store, alias: string): number {
  return Number(store.db.get<{ user_version: number }>(`PRAGMA ${alias}.user_version`)!.user_version);
}

/**
 * The columns a restore copies (generated ones are computed by SQLite and may not be inserted) and the primary
 * key that names a row, of `table` in the database `alias`.
 */
function shapeOf(store: Store, alias: string, table: string): { columns: string[]; key: string[] } {
  const cols = store.db.all<{ name: string; hidden: number; pk: number }>(
    'SELECT name, hidden, pk FROM pragma_table_xinfo(?, ?)',
    table,
    alias,
  );
  const key = cols
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
  if (key.length === 0) throw new Error(`internal: the restored table ${table} has no primary key to name its rows by`);
  return { columns: cols.filter((c) => c.hidden === 0).map((c) => c.name), key };
}

/** The state rows of the database attached as `alias`, each hashed over the columns a restore copies. */
export function stateRows(store: Store, alias: string): StateRow[] {
  const out: StateRow[] = [];
  for (const table of RESTORED_TABLES) {
    const { columns, key } = shapeOf(store, alias, table);
    const rows = store.db.all<Record<string, unknown>>(
      `SELECT ${columns.map(quote).join(', ')} FROM ${alias}.${quote(table)} WHERE ${STATE_ROWS[table]}`,
    );
    for (const row of rows) {
      const text = JSON.stringify(columns.map((c) => row[c]));
      out.push({
        key: `${table}/${key.map((k) => String(row[k])).join('/')}`,
        sha256: sha256(text),
        size: Buffer.byteLength(text, 'utf8'),
        ...(table === 'docs' ? { kind: String(row.kind) } : {}),
      });
    }
  }
  return out;
}

export const stateDigest = (rows: readonly StateRow[]): string => sha256(stateDigestText(rows));

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** The run the trust state of the database attached as `alias` names (null: none). */
export function trustRunId(store: Store, alias: string): string | null {
  const row = store.db.get<{ run: string | null }>(
    `SELECT body ->> '$.runId' AS run FROM ${alias}.docs WHERE key = ? AND kind = ?`,
    RUN_HISTORY_DOC_KIND,
    RUN_HISTORY_DOC_KIND,
  );
  return row?.run ?? null;
}

/**
 * Inside a transaction: replace the state rows of this database with those of the snapshot attached as `alias`
 * (same schema version: the caller checked). Rows a rollback keeps are neither deleted nor copied. Documents of
 * the `history` kinds stay as they are now; only one the snapshot has and this database lacks is copied back.
 */
export function restoreRows(store: Store, alias: string, history: readonly string[]): void {
  const kept = history.length ? ` AND kind NOT IN (${history.map(() => '?').join(', ')})` : '';
  const before = store.records.boundRows();
  for (const table of RESTORED_TABLES) {
    const columns = shapeOf(store, 'main', table).columns.map(quote).join(', ');
    const where = table === 'docs' ? `${STATE_ROWS[table]}${kept}` : STATE_ROWS[table];
    const params = table === 'docs' ? history : [];
    store.db.run(`DELETE FROM main.${quote(table)} WHERE ${where}`, ...params);
    store.db.run(
      `INSERT INTO main.${quote(table)} (${columns}) SELECT ${columns} FROM ${alias}.${quote(table)} WHERE ${where}`,
      ...params,
    );
    // History the snapshot holds but this database no longer does (removed outside loki-mode) comes back.
    if (table === 'docs' && history.length)
      store.db.run(
        `INSERT OR IGNORE INTO main.docs (${columns}) SELECT ${columns} FROM ${alias}.docs WHERE ${STATE_ROWS.docs} AND kind IN (${history.map(() => '?').join(', ')})`,
        ...history,
      );
  }
  // The rows came back by SQL, not through RecordIO: bind the trust records as restored (store/bindings.ts), in
  // the rollback's own audit entry.
  store.records.rebind(before);
}
