/**
 * The run's database, `.loki/loki.db`: one SQLite file through Node's built-in `node:sqlite` (no native addon).
 *
 * - WAL, synchronous=FULL: a committed transaction survives a crash or power loss; readers never wait on writers.
 * - Every change is one `BEGIN IMMEDIATE` transaction (Db.tx): the write lock is taken at the start, so two
 *   processes never both read a state and then both write from it. A busy database is retried here, after short
 *   randomised waits (from 20 microseconds, never more than 1 ms), not by SQLite's own busy handler,
 *   whose waits grow to 100 ms and gave 8 contending agents a p99 of half a second.
 * - The schema is versioned by `PRAGMA user_version` and moved forward by the numbered migrations in
 *   migrations.ts at open. A database from a newer loki-mode is refused, never rewritten or set aside.
 * - The file is created 0600 under a 0700 `.loki/`; SQLite gives its -wal and -shm files the same mode.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DatabaseSync, StatementSync, SQLInputValue } from 'node:sqlite';
import { NewerSchemaError, StoreError } from '../errors.js';
import { asDiskError } from './disk.js';
import { VERSION } from '../version.js';
import { faultPoint } from './fault.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';

export const DB_FILE = 'loki.db';
/** How long a transaction waits for another process's write to finish before giving up. */
export const BUSY_TIMEOUT_MS = 15_000;
const FIRST_WAIT_MS = 0.02;
const LONGEST_WAIT_MS = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * What to tell the user when a database cannot be opened. Only a file that is not a database, or a damaged one,
 * is worth moving aside; a full disk, a read-only folder or missing permissions are fixed where they are.
 */
function openProblem(err: unknown): string {
  const code = (err as { errcode?: unknown }).errcode;
  const primary = typeof code === 'number' ? code & 0xff : -1;
  const said = (err as Error).message;
  // SQLITE_CORRUPT (11), SQLITE_NOTADB (26)
  if (primary === 11 || primary === 26) {
    return `cannot use .loki/${DB_FILE}: ${said}. Move it aside (mv .loki/${DB_FILE} .loki/${DB_FILE}.bad) to start afresh, or restore it from a copy`;
  }
  // SQLITE_READONLY (8), SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_CANTOPEN (14), SQLITE_PERM (3)
  const hint =
    primary === 13
      ? 'free some disk space'
      : primary === 8 || primary === 3 || primary === 14
        ? 'make .loki/ writable by you'
        : 'see loki doctor';
  return `cannot use .loki/${DB_FILE}: ${said}; ${hint}, then try again (the database itself was left as it is)`;
}

/** SQLITE_BUSY (5) or one of its extended codes. */
function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' ? (code & 0xff) === 5 : /database is locked/i.test((err as Error).message);
}

/**
 * Run `fn` until it does not fail with SQLITE_BUSY, waiting between tries (jittered, doubling to 1 ms) for up to
 * BUSY_TIMEOUT_MS. Synchronous: the connection belongs to this one call meanwhile.
 */
function retryBusy<T>(fn: () => T, timeoutMs = BUSY_TIMEOUT_MS): T {
  let deadline = 0;
  let wait = FIRST_WAIT_MS;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err)) throw err;
      const now = Date.now();
      if (deadline === 0) deadline = now + timeoutMs;
      else if (now > deadline)
        throw new StoreError(`.loki/${DB_FILE} stayed locked by another process for ${timeoutMs / 1000} s; try again`);
      Atomics.wait(sleeper, 0, 0, wait * (0.5 + Math.random()));
      wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    }
  }
}

type Params = SQLInputValue[];

/** A transaction body's result; a promise means the body awaited, which a transaction never spans. */
function synchronous<T>(result: T): T {
  if (result instanceof Promise)
    throw new Error('internal: a transaction body returned a promise; transactions are synchronous');
  return result;
}

let sqlite: typeof import('node:sqlite') | undefined;

/**
 * node:sqlite, loaded on first use. Node 22 announces it as experimental on stderr at load; that line is noise
 * for the CLI's users and the hooks' hosts, so that one warning is dropped (Node 24 no longer prints it).
 */
function sqliteModule(): typeof import('node:sqlite') {
  if (sqlite) return sqlite;
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (/SQLite is an experimental feature/.test(text)) return;
    return (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    sqlite = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  } finally {
    process.emitWarning = emit;
  }
  if (!sqlite)
    throw new StoreError(
      'this Node.js has no node:sqlite: loki-mode needs Node.js 22.13 or newer (https://nodejs.org)',
    );
  return sqlite;
}

export interface OpenOptions {
  /** Open without creating or migrating anything (the copy a checkpoint is taken from). */
  readOnly?: boolean;
}

export class Db {
  readonly file: string;
  private readonly conn: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private depth = 0;
  /** How long a statement outside a transaction waits for a lock (Db.withBusyTimeout shortens it). */
  private busyTimeoutMs = BUSY_TIMEOUT_MS;
  /** Inside Db.read: a write transaction may not start there. */
  private reading = false;

  private constructor(file: string, conn: DatabaseSync) {
    this.file = file;
    this.conn = conn;
  }

  /**
   * Open (creating when missing, unless read-only) the database in the directory `dir`, which the caller has
   * validated (`.loki/`, 0700). Runs the pending migrations.
   */
  static open(dir: string, opts: OpenOptions = {}): Db {
    return Db.openFile(path.join(dir, DB_FILE), opts);
  }

  /** Db.open for a database file of another name (a checkpoint's snapshot being migrated). */
  static openFile(file: string, opts: OpenOptions = {}): Db {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st && st.isFile() && (st.mode & 0o077) !== 0 && !opts.readOnly) {
      // Made or copied by something else with a wider mode: the run's state is private to the user. SQLite
      // gives the -wal and -shm files the database file's mode.
      fs.chmodSync(file, 0o600);
    }
    if (st && !st.isFile()) {
      throw new StoreError(
        `.loki/${DB_FILE} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; move it aside (mv .loki/${DB_FILE} .loki/${DB_FILE}.bad) and run loki doctor`,
      );
    }
    if (!st) {
      if (opts.readOnly)
        throw new StoreError(`.loki/${DB_FILE} does not exist yet: nothing has been recorded in this project`);
      // Created empty and private before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
      try {
        fs.closeSync(
          fs.openSync(
            file,
            fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
            0o600,
          ),
        );
      } catch (err) {
        // Another process created it first: open theirs (the symlink check above is repeated by O_NOFOLLOW there).
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    const { DatabaseSync } = sqliteModule();
    let conn: DatabaseSync;
    try {
      // No SQLite busy timeout: retryBusy waits instead (see the top of this file).
      conn = new DatabaseSync(file, {
        readOnly: opts.readOnly ?? false,
        enableForeignKeyConstraints: true,
        timeout: 0,
      });
    } catch (err) {
      throw (
        asDiskError(err, path.dirname(file), `cannot open .loki/${DB_FILE}`) ??
        new StoreError(`cannot open .loki/${DB_FILE}: ${(err as Error).message}; run loki doctor`)
      );
    }
    const db = new Db(file, conn);
    try {
      // A newer file is refused before anything (even the journal mode) is written to it.
      const found = db.version();
      if (found > SCHEMA_VERSION) throw new NewerSchemaError(found, SCHEMA_VERSION);
      if (!opts.readOnly) {
        // WAL is a property of the file (kept once set); synchronous is per connection. Readers that never wait
        // on the writer, and a commit that cannot be refused as busy, rest on WAL: a file system that cannot
        // give it (no shared memory) is refused rather than used in another mode.
        const mode = retryBusy(() => conn.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string });
        if (mode.journal_mode !== 'wal') {
          throw new StoreError(
            `.loki/${DB_FILE} cannot use write-ahead logging here (journal mode ${mode.journal_mode}): keep the project on a local file system`,
          );
        }
        db.pragma('synchronous = FULL');
      }
      db.migrate(opts.readOnly ?? false);
    } catch (err) {
      conn.close();
      if (err instanceof StoreError) throw err;
      // "unable to open database file", "disk I/O error": the folder says whether a full or read-only disk is why.
      throw asDiskError(err, path.dirname(file), `cannot use .loki/${DB_FILE}`) ?? new StoreError(openProblem(err));
    }
    return db;
  }

  /** The schema version the file is at. */
  version(): number {
    // Read at every transaction's start: a kept statement, and never busy inside one.
    const s = this.statement('PRAGMA user_version');
    const row = (this.depth > 0 ? s.get() : retryBusy(() => s.get())) as { user_version: number };
    return Number(row.user_version);
  }

  private pragma(text: string): void {
    retryBusy(() => this.conn.exec(`PRAGMA ${text}`));
  }

  /** Bring the schema up to SCHEMA_VERSION, one numbered migration per transaction; refuse a newer file. */
  private migrate(readOnly: boolean): void {
    const initial = this.version();
    let found = initial;
    if (found > SCHEMA_VERSION) throw new NewerSchemaError(found, SCHEMA_VERSION);
    if (found === SCHEMA_VERSION) return;
    if (readOnly)
      throw new StoreError(
        `.loki/${DB_FILE} is at schema ${found} and needs migrating to ${SCHEMA_VERSION}: run any loki command that writes (loki doctor --fix)`,
      );
    for (const m of MIGRATIONS) {
      if (m.version <= found) continue;
      this.tx(() => {
        // Another process may have migrated while this one waited for the write lock.
        const now = this.version();
        if (now > SCHEMA_VERSION) throw new NewerSchemaError(now, SCHEMA_VERSION);
        if (now >= m.version) return;
        m.up(this);
        if (m.version === SCHEMA_VERSION) {
          // Who made the file, and who brought it to this version (migrations.ts, version 2).
          this.conn
            .prepare(
              'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
            )
            .run(initial === 0 ? 'created_by' : 'migrated_by', VERSION);
        }
        this.pragma(`user_version = ${m.version}`);
      });
      found = m.version;
    }
  }

  /** A prepared statement, kept for the life of the connection. */
  statement(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.conn.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  // Outside a transaction a statement may meet a busy database (a write, or a reader during WAL recovery after a
  // crash) and is retried; inside one this connection already holds the write lock.
  get<T>(sql: string, ...params: Params): T | undefined {
    const s = this.statement(sql);
    return (this.depth > 0 ? s.get(...params) : retryBusy(() => s.get(...params), this.busyTimeoutMs)) as T | undefined;
  }

  all<T>(sql: string, ...params: Params): T[] {
    const s = this.statement(sql);
    return (this.depth > 0 ? s.all(...params) : retryBusy(() => s.all(...params), this.busyTimeoutMs)) as T[];
  }

  run(sql: string, ...params: Params): { changes: number; lastInsertRowid: number } {
    if (this.reading) throw new Error('internal: a write inside Db.read');
    const s = this.statement(sql);
    const r = this.depth > 0 ? s.run(...params) : retryBusy(() => s.run(...params), this.busyTimeoutMs);
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
  }

  /** Run several statements (migrations, pragmas). */
  exec(sql: string): void {
    if (this.reading) throw new Error('internal: a write inside Db.read');
    if (this.depth > 0) this.conn.exec(sql);
    else retryBusy(() => this.conn.exec(sql), this.busyTimeoutMs);
  }

  /**
   * Run `fn` with statements outside a transaction waiting at most `ms` for another process's lock: a diagnosis
   * (loki doctor) names a locked file after a moment instead of waiting the full busy timeout on each.
   */
  withBusyTimeout<T>(ms: number, fn: () => T): T {
    const saved = this.busyTimeoutMs;
    this.busyTimeoutMs = ms;
    try {
      return fn();
    } finally {
      this.busyTimeoutMs = saved;
    }
  }

  /**
   * Run the reads of `fn` in one read transaction: they see the database as of one moment, whatever other processes
   * commit meanwhile, and a busy start (a reader during WAL recovery after a crash) is retried as a whole. Inside a
   * transaction it simply runs. `fn` must be synchronous and must not write.
   */
  read<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    return retryBusy(() => {
      this.conn.exec('BEGIN');
      this.depth = 1;
      this.reading = true;
      try {
        const result = synchronous(fn());
        this.conn.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.conn.isTransaction) this.conn.exec('ROLLBACK');
        throw err;
      } finally {
        this.depth = 0;
        this.reading = false;
      }
    }, this.busyTimeoutMs);
  }

  /** True inside Db.tx (a write transaction; not inside Db.read). */
  get inTransaction(): boolean {
    return this.depth > 0 && !this.reading;
  }

  /**
   * Run `fn` in one write transaction: BEGIN IMMEDIATE takes the database's write lock first (waiting up to the
   * busy timeout for another process), `fn` reads and writes, and COMMIT makes it all durable at once; a throw
   * rolls everything back. `fn` must be synchronous: a transaction never spans an await, so the one connection
   * of a process is never shared by two changes. A nested call joins the outer transaction.
   */
  tx<T>(fn: () => T): T {
    if (this.reading) throw new Error('internal: a write transaction inside Db.read');
    if (this.depth > 0) return this.nested(fn);
    this.beginImmediate();
    this.depth = 1;
    try {
      faultPoint('tx-begun');
      // Another process may have moved the file to a newer schema since this connection opened it.
      const now = this.version();
      if (now > SCHEMA_VERSION) throw new NewerSchemaError(now, SCHEMA_VERSION);
      const result = synchronous(fn());
      faultPoint('tx-before-commit');
      // A busy COMMIT leaves the transaction open: retried, never thrown away.
      retryBusy(() => this.conn.exec('COMMIT'));
      faultPoint('tx-after-commit');
      return result;
    } catch (err) {
      if (this.conn.isTransaction) this.conn.exec('ROLLBACK');
      throw err;
    } finally {
      this.depth = 0;
    }
  }

  private nested<T>(fn: () => T): T {
    this.depth++;
    try {
      return synchronous(fn());
    } finally {
      this.depth--;
    }
  }

  private beginImmediate(): void {
    retryBusy(() => this.conn.exec('BEGIN IMMEDIATE'));
  }

  /** Copy the whole database, consistent as of one moment, to `target` (a new file). */
  snapshotTo(target: string): void {
    retryBusy(() => this.conn.prepare('VACUUM INTO ?').run(target));
  }

  close(): void {
    this.statements.clear();
    try {
      this.conn.close();
    } catch {
      /* already closed */
    }
  }
}
