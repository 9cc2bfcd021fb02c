/**
 * Schema-versioned JSON records. Each record file carries `kind` and `schemaVersion` next to its fields and is
 * validated on every read. A file that cannot be parsed or does not match its schema is moved to
 * `.loki/quarantine/` and reported; it never takes the server down.
 */
import crypto from 'node:crypto';
import { readFileIfExists, moveFile, writeFileAtomic, type WriteOptions } from './fsx.js';
import { PathError, type SafeDir } from './paths.js';
import { safeParse, type Schema } from './schema.js';

export interface RecordType<T> {
  kind: string;
  version: number;
  schema: Schema<T>;
}

export interface Quarantined {
  file: string;
  movedTo: string | null;
  reason: string;
  at: string;
}

export class NewerSchemaError extends Error {
  constructor(file: string, found: number, supported: number) {
    super(`.loki/${file} was written by a newer loki-mode (schemaVersion ${found}, this one reads ${supported}); upgrade loki-mode`);
    this.name = 'NewerSchemaError';
  }
}

export function encodeRecord<T>(type: RecordType<T>, value: T): string {
  return `${JSON.stringify({ kind: type.kind, schemaVersion: type.version, ...(value as object) }, null, 2)}\n`;
}

/** Parse a record's text; returns the value or the reason it is not valid. */
export function decodeRecord<T>(type: RecordType<T>, text: string, file: string): { value: T } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { problem: `not valid JSON (${(err as Error).message})` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { problem: 'not a JSON object' };
  const { kind, schemaVersion, ...fields } = raw as Record<string, unknown>;
  if (kind !== type.kind) return { problem: `kind is ${JSON.stringify(kind)}, expected "${type.kind}"` };
  if (typeof schemaVersion !== 'number') return { problem: 'schemaVersion is missing' };
  if (schemaVersion > type.version) throw new NewerSchemaError(file, schemaVersion, type.version);
  if (schemaVersion !== type.version) return { problem: `schemaVersion ${schemaVersion} is not supported (expected ${type.version})` };
  const parsed = safeParse(type.schema, fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'}` };
  }
  return { value: parsed.data };
}

export class RecordIO {
  /** Problems found since this process started (shown by loki_status and loki doctor). */
  readonly quarantined: Quarantined[] = [];
  private readonly cache = new Map<string, { key: string; value: unknown }>();

  constructor(private readonly loki: SafeDir) {}

  /**
   * Read and validate a record; `stable` for records rewritten in place (see readFileIfExists). `within` reads it
   * through a folder already resolved under `.loki/` (its path relative to that folder), for callers reading
   * many files of one folder; `rel` still names the file in reports and quarantine.
   */
  read<T>(rel: string, type: RecordType<T>, stable = false, within?: { dir: SafeDir; rel: string }): T | undefined {
    const buf = within ? readFileIfExists(within.dir, within.rel, undefined, stable) : readFileIfExists(this.loki, rel, undefined, stable);
    if (!buf) return undefined;
    const result = decodeRecord(type, buf.toString('utf8'), rel);
    if ('value' in result) return result.value;
    this.quarantine(rel, result.problem);
    return undefined;
  }

  /**
   * A record read often and written rarely (the run, read by every claim): the last value is kept with its file's
   * identity (inode, size, modification, change and birth times; every write replaces the file) and returned,
   * frozen, while the file is unchanged. Callers must not modify it.
   */
  readCached<T>(rel: string, type: RecordType<T>): Readonly<T> | undefined {
    let key: string;
    try {
      const st = this.loki.resolve(rel, { leaf: 'file' }).stat!;
      key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.birthtimeMs}`;
    } catch (err) {
      if (err instanceof PathError && err.code === 'PATH_MISSING') {
        this.cache.delete(rel);
        return undefined;
      }
      throw err;
    }
    const hit = this.cache.get(rel);
    if (hit?.key === key) return hit.value as Readonly<T>;
    const value = this.read(rel, type);
    if (value === undefined) this.cache.delete(rel);
    else this.cache.set(rel, { key, value: deepFreeze(value) });
    return value;
  }

  write<T>(rel: string, type: RecordType<T>, value: T, opts?: WriteOptions): void {
    writeFileAtomic(this.loki, rel, encodeRecord(type, value), opts);
  }

  /** Move a bad file aside so every later read starts clean, and remember why. */
  quarantine(rel: string, reason: string): Quarantined {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();
    const flat = rel.replace(/\//g, '__');
    const target = `quarantine/${stamp}-${crypto.randomBytes(3).toString('hex')}-${flat}`;
    let movedTo: string | null = null;
    try {
      if (moveFile(this.loki, rel, target)) movedTo = target;
    } catch {
      movedTo = null;
    }
    const q: Quarantined = { file: rel, movedTo, reason, at: new Date().toISOString() };
    this.quarantined.push(q);
    process.emitWarning(`loki: quarantined .loki/${rel}: ${reason}${movedTo ? ` (moved to .loki/${movedTo})` : ''}`, { code: 'LOKI_QUARANTINE' });
    return q;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
