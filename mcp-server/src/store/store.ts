/**
 * The `.loki/` store: the validated directory, the database in it, its documents and its audit log, and
 * `mutate()`, the one way state changes: one transaction that makes the change and appends its audit entry,
 * committed together.
 *
 *   .loki/loki.db        everything the server keeps (store/migrations.ts has the schema)
 *   .loki/spec/          the copy of the spec the run was started from
 *   .loki/proofs/<run>/  evidence receipts
 *   .loki/PAUSE, STOP, HUMAN_INPUT.md, config.yaml   written by people
 *   .loki/logs/          delivered HUMAN_INPUT directives
 */
import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../audit/chain.js';
import { AuditLog, MAX_DATA_BYTES, type AuditNote, type Redactor } from '../audit/log.js';
import { AnchorFile } from '../audit/anchor.js';
import { StoreError } from '../errors.js';
import { BOUND_FLAG, adoptUnboundRecords } from './bindings.js';
import { Db } from './db.js';
import { createExclusive } from './fsx.js';
import { SafeDir, splitRelativePath } from './paths.js';
import { RecordIO, type Bindings } from './records.js';

export type { AuditNote, Redactor };

/** Files of the 0.1 layout (one JSON file per record) whose presence means a `.loki/` this version cannot read. */
const FILE_LAYOUT_MARKERS = ['state/run.json', 'queue/tasks', 'audit/log.jsonl'];

export class Store {
  readonly project: SafeDir;
  readonly loki: SafeDir;
  readonly db: Db;
  readonly records: RecordIO;
  readonly audit: AuditLog;
  /** `$LOKI_HOME`: where the external anchor and the held-out sets are kept, outside the project. */
  readonly lokiHome: string;
  /** This transaction appended a binding (Store.tx then sets the meta flag, once per connection). */
  private bindingsAppended = false;
  private flagged = false;
  /** Relative names `exists` has already validated. */
  private readonly checkedNames = new Set<string>();

  private constructor(
    project: SafeDir,
    loki: SafeDir,
    db: Db,
    lokiHome: string,
    actor: string,
    redact: Redactor | undefined,
  ) {
    this.project = project;
    this.loki = loki;
    this.db = db;
    this.records = new RecordIO(db);
    this.lokiHome = lokiHome;
    this.audit = new AuditLog(db, new AnchorFile(lokiHome, project.root), actor, redact);
  }

  /**
   * `redact` scrubs audit data before it is hashed (audit/log.ts Redactor): every opener outside tests gives it.
   * `readOnly` (`loki doctor` without --fix): an existing `.loki/` and database, opened without writing anything:
   * no mode fixed, no `.gitignore`, no migration, no adoption of unbound records; every write fails.
   */
  static open(
    projectRoot: string,
    lokiHome: string,
    actor: string,
    redact?: Redactor,
    opts: { readOnly?: boolean } = {},
  ): Store {
    const project = SafeDir.open(projectRoot);
    const loki = project.child('.loki', !opts.readOnly);
    if (!opts.readOnly) {
      // Private to the user: the run's state, receipts and memories are nobody else's business.
      const mode = fs.statSync(loki.root).mode & 0o777;
      if (mode !== 0o700) fs.chmodSync(loki.root, 0o700);
    }
    refuseFileLayout(loki.root);
    if (!opts.readOnly) keepOutOfGit(loki);
    const db = Db.open(loki.root, { readOnly: opts.readOnly ?? false });
    const store = new Store(project, loki, db, lokiHome, actor, redact);
    try {
      if (!opts.readOnly) adoptUnboundRecords(store);
    } catch (err) {
      store.close();
      throw err;
    }
    return store;
  }

  /**
   * Run `fn` in one transaction (see Db.tx: synchronous, all or nothing). After the commit the external audit
   * anchor catches up with what the transaction appended.
   */
  tx<T>(fn: () => T): T {
    if (this.db.inTransaction) return this.db.tx(fn);
    let result: T;
    try {
      result = this.db.tx(() => {
        const r = fn();
        // Trust records written without an audit entry of their own are bound by one of their own.
        const records = this.records.takeBindings();
        if (records) {
          this.audit.appendAll(bindingNotes(records));
          this.bindingsAppended = true;
        }
        if (this.bindingsAppended && !this.flagged) {
          // The shortcut adoptUnboundRecords reads on every open, set in the transaction of a binding.
          this.db.run('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)', BOUND_FLAG, 'bound');
          this.flagged = true;
        }
        this.bindingsAppended = false;
        return r;
      });
    } catch (err) {
      this.audit.rolledBack();
      this.records.dropBindings();
      this.bindingsAppended = false;
      // The flag's row went with the rollback: the next binding writes it again.
      this.flagged = false;
      throw err;
    }
    this.audit.committed();
    return result;
  }

  /**
   * Change state and record the change in the audit log, in one transaction. `fn` does the reads and writes;
   * `note` describes the result for the audit entry (undefined when nothing changed). The entry also binds the
   * trust records the change wrote (store/records.ts BOUND_KINDS) by their content hash.
   */
  mutate<T>(fn: () => T, note: (result: T) => AuditNote | undefined): T {
    return this.tx(() => {
      const result = fn();
      const n = note(result);
      if (n) {
        const records = this.records.takeBindings();
        if (records) this.bindingsAppended = true;
        // With bindings, measured as it will be stored (scrubbed), so bindings that fit are never cut off with it.
        const data = n.data === undefined ? {} : records ? this.audit.scrub(n.data) : n.data;
        const merged =
          records && data !== null && typeof data === 'object' && !Array.isArray(data) && !('records' in data)
            ? { ...data, records }
            : undefined;
        // Data over the audit log's limit is stored as its hash: bindings that would not fit go in entries of their own.
        if (merged && Buffer.byteLength(canonicalJson(merged)) <= MAX_DATA_BYTES)
          this.audit.appendAll([{ ...n, data: merged }]);
        else this.audit.appendAll([n, ...(records ? bindingNotes(records) : [])]);
      }
      return result;
    });
  }

  /** True when `.loki/<rel>` exists as anything at all (used for the PAUSE/STOP markers). */
  exists(rel: string): boolean {
    if (!this.checkedNames.has(rel)) {
      splitRelativePath(rel);
      // The same few names are asked about on every tool call (the markers).
      if (this.checkedNames.size < 256) this.checkedNames.add(rel);
    }
    try {
      // No exception for the usual answer (absent): building one costs more than the lstat.
      return fs.lstatSync(path.join(this.loki.root, rel), { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  }

  close(): void {
    this.audit.close();
    this.db.close();
  }
}

/** `records.bind` entries for `records`, each small enough to be kept whole (about 60 keys per entry). */
function bindingNotes(records: Bindings): AuditNote[] {
  const keys = Object.keys(records);
  const notes: AuditNote[] = [];
  for (let i = 0; i < keys.length; i += 40)
    notes.push({
      action: 'records.bind',
      data: { records: Object.fromEntries(keys.slice(i, i + 40).map((k) => [k, records[k] ?? null])) },
    });
  return notes;
}

/**
 * `.loki/.gitignore` holding `*`: git then treats the whole folder as ignored, so `git clean -fd` (without -x)
 * keeps it. Written once; a read-only `.loki/` goes without it rather than fail the open over it.
 */
function keepOutOfGit(loki: SafeDir): void {
  if (fs.existsSync(path.join(loki.root, '.gitignore'))) return;
  try {
    createExclusive(loki, '.gitignore', '*\n', { durable: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw err;
  }
}

/** A `.loki/` written by loki-mode 0.1 (files, no database) is refused with what to do, never half-read. */
function refuseFileLayout(lokiRoot: string): void {
  if (fs.existsSync(path.join(lokiRoot, 'loki.db'))) return;
  const found = FILE_LAYOUT_MARKERS.filter((m) => fs.existsSync(path.join(lokiRoot, m)));
  if (found.length === 0) return;
  throw new StoreError(
    `.loki/ holds state from loki-mode 0.1 (${found.map((f) => `.loki/${f}`).join(', ')}), which kept one file per record; ` +
      'this version keeps it in .loki/loki.db. Finish that run with loki-mode 0.1, or move it aside to start afresh: mv .loki .loki-0.1',
  );
}
