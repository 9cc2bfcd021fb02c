/**
 * Documents: the small records kept whole in the `docs` table (the run, sessions, the trust state, checklists,
 * councils, verifications, checkpoints). Each has a kind and a zod schema, the one definition of its shape
 * (types are inferred from it); it is validated when written and on every read. A document that no longer
 * matches its schema was changed outside loki-mode: the read fails with DamagedRecordError naming the fix,
 * and nothing is moved aside or hidden. Shape changes between versions are migrations (migrations.ts).
 */
import crypto from 'node:crypto';
import { DamagedRecordError } from '../errors.js';
import type { Db } from './db.js';
import { damagedMessage, parseStored, safeParse, type Schema } from './schema.js';

export interface RecordType<T> {
  readonly kind: string;
  readonly schema: Schema<T>;
}

/** A record type whose schema is built when first needed (`schema` is memoized by the caller: onFirstUse). */
export function lazyRecord<T>(kind: string, schema: () => Schema<T>): RecordType<T> {
  return {
    kind,
    get schema() {
      return schema();
    },
  };
}

interface Row {
  key: string;
  kind: string;
  body: string;
}

/**
 * Decoded values of rows whose text has not changed since, so a record read on every call (the run, a task being
 * claimed) is validated once per version, not once per read. The value is frozen: it is shared by every reader.
 */
export class DecodeMemo<T> {
  private readonly entries = new Map<string, { text: string; value: T }>();
  constructor(private readonly limit = 4096) {}

  get(key: string, text: string, decode: () => T): T {
    const hit = this.entries.get(key);
    if (hit && hit.text === text) return hit.value;
    const value = deepFreeze(decode());
    if (this.entries.size >= this.limit) this.entries.clear();
    this.entries.set(key, { text, value });
    return value;
  }
}

/** Freeze `value` and everything it holds, so a value shared between readers cannot be changed by one. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * The trust records: every write of one of these kinds is bound into the audit log by the sha256 of the text
 * stored (Store.tx appends the binding in the same transaction), so a row changed, added or deleted behind the
 * server's back, with sqlite3 or any other tool, no longer matches the chain (store/bindings.ts checks it).
 */
export const BOUND_KINDS: ReadonlySet<string> = new Set([
  'run',
  'verification',
  'baseline-tests',
  'checklist',
  'council',
  'trust',
  'waiver',
]);

/** The SQL condition for the trust records' rows (the kinds are fixed names, written in as literals). */
const BOUND_WHERE = `kind IN (${[...BOUND_KINDS].map((k) => `'${k}'`).join(', ')})`;

/**
 * key -> [sha256 of the text before, sha256 of the text after] (null: no record on that side). Binding the text
 * before as well makes the chain continuous: a row changed behind the server's back and then written again by the
 * server (a read-modify-write would carry the change on) shows as a break at that entry (store/bindings.ts).
 */
export type Bindings = Record<string, [before: string | null, after: string | null]>;

export const bodyHash = (body: string): string => crypto.createHash('sha256').update(body).digest('hex');

export class RecordIO {
  private readonly memo = new DecodeMemo<unknown>();
  /** Bindings of this transaction's writes, not yet appended to the audit log. */
  private pending: Bindings | undefined;
  constructor(private readonly db: Db) {}

  /** The bindings written since the last call (undefined: none), handed to the audit log by Store. */
  takeBindings(): Bindings | undefined {
    const b = this.pending;
    this.pending = undefined;
    return b;
  }

  /** Bind the write of `key` (its text now `body`, null when removed); `before` is its text before the write. */
  private bind(kind: string, key: string, before: string | null, body: string | null): void {
    if (!BOUND_KINDS.has(kind)) return;
    // Outside a transaction the binding could not be committed with the row.
    if (!this.db.inTransaction) throw new Error(`internal: a ${kind} record must be written inside Store.tx`);
    const pending = (this.pending ??= {});
    // Written twice in one transaction: the text before the first write, the text after the last.
    const first = key in pending ? pending[key]![0] : before === null ? null : bodyHash(before);
    pending[key] = [first, body === null ? null : bodyHash(body)];
  }

  /** A trust record is written only inside a transaction (its binding commits with it): checked before any SQL. */
  private mustBind(kind: string): void {
    if (BOUND_KINDS.has(kind) && !this.db.inTransaction)
      throw new Error(`internal: a ${kind} record must be written inside Store.tx`);
  }

  private bodyOf(key: string): string | null {
    return this.db.get<{ body: string }>('SELECT body FROM docs WHERE key = ?', key)?.body ?? null;
  }

  read<T>(key: string, type: RecordType<T>): T | undefined {
    const row = this.db.get<Row>('SELECT key, kind, body FROM docs WHERE key = ?', key);
    return row
      ? (this.memo.get(`${type.kind}\0${row.kind}\0${key}`, row.body, () => decode(type, row)) as T)
      : undefined;
  }

  /** Every document of `type` whose key starts with `prefix`, in key order. */
  list<T>(prefix: string, type: RecordType<T>): T[] {
    return this.db
      .all<Row>(
        'SELECT key, kind, body FROM docs WHERE kind = ? AND key >= ? AND key < ? || char(0x10ffff) ORDER BY key',
        type.kind,
        prefix,
        prefix,
      )
      .map((row) => this.memo.get(`${type.kind}\0${row.kind}\0${row.key}`, row.body, () => decode(type, row)) as T);
  }

  /** Keys of `type` starting with `prefix`, in key order, without reading the bodies. */
  keys(prefix: string, type: RecordType<unknown>): string[] {
    return this.db
      .all<{ key: string }>(
        'SELECT key FROM docs WHERE kind = ? AND key >= ? AND key < ? || char(0x10ffff) ORDER BY key',
        type.kind,
        prefix,
        prefix,
      )
      .map((r) => r.key);
  }

  /** Insert or replace; validated first, so a bad value is a bug reported here, never a bad row. */
  write<T>(key: string, type: RecordType<T>, value: T): void {
    const parsed = safeParse(type.schema, value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `internal: refusing to write an invalid ${type.kind} record (${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'})`,
      );
    }
    const body = JSON.stringify(value);
    if (BOUND_KINDS.has(type.kind)) this.bind(type.kind, key, this.bodyOf(key), body);
    this.db.run(
      'INSERT INTO docs (key, kind, body) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, body = excluded.body',
      key,
      type.kind,
      body,
    );
  }

  /** Insert only when the key is free; true when written. */
  create<T>(key: string, type: RecordType<T>, value: T): boolean {
    const parsed = safeParse(type.schema, value);
    if (!parsed.success) throw new Error(`internal: refusing to write an invalid ${type.kind} record`);
    this.mustBind(type.kind);
    const body = JSON.stringify(value);
    const created =
      this.db.run(
        'INSERT INTO docs (key, kind, body) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING',
        key,
        type.kind,
        body,
      ).changes === 1;
    if (created) this.bind(type.kind, key, null, body);
    return created;
  }

  remove(key: string): boolean {
    // Any kind may be bound: refuse before deleting, never after (a row gone without its binding is tamper evidence).
    if (!this.db.inTransaction)
      this.mustBind(this.db.get<{ kind: string }>('SELECT kind FROM docs WHERE key = ?', key)?.kind ?? '');
    const row = this.db.get<{ kind: string; body: string }>('DELETE FROM docs WHERE key = ? RETURNING kind, body', key);
    if (row) this.bind(row.kind, key, row.body, null);
    return row !== undefined;
  }

  /** Every trust record now: key -> kind and text (taken before rows are replaced by SQL, for rebind). */
  boundRows(): Map<string, { kind: string; body: string }> {
    const rows = this.db.all<{ key: string; kind: string; body: string }>(
      `SELECT key, kind, body FROM docs WHERE ${BOUND_WHERE}`,
    );
    return new Map(rows.map((r) => [r.key, { kind: r.kind, body: r.body }]));
  }

  /** True when any trust record exists. */
  hasBoundRows(): boolean {
    return this.db.get(`SELECT 1 AS x FROM docs WHERE ${BOUND_WHERE} LIMIT 1`) !== undefined;
  }

  /**
   * After rows were replaced by SQL rather than written here (a rollback's restore): bind every trust record that
   * changed, from its text in `before` (boundRows taken first) to its text now.
   */
  rebind(before: Map<string, { kind: string; body: string }>): void {
    const now = this.boundRows();
    for (const [key, was] of before) {
      const is = now.get(key);
      if (!is) this.bind(was.kind, key, was.body, null);
      else if (is.body !== was.body) this.bind(is.kind, key, was.body, is.body);
    }
    for (const [key, is] of now) if (!before.has(key)) this.bind(is.kind, key, null, is.body);
  }

  /** Drop bindings of a transaction that rolled back. */
  dropBindings(): void {
    this.pending = undefined;
  }
}

function decode<T>(type: RecordType<T>, row: Row): T {
  const what = `the ${type.kind} record "${row.key}"`;
  if (row.kind !== type.kind) throw new DamagedRecordError(damagedMessage(what, `kind: it holds a ${row.kind} record`));
  const r = parseStored(type.schema, row.body);
  if ('issue' in r) throw new DamagedRecordError(damagedMessage(what, r.issue));
  return r.value;
}
