/**
 * The database itself (store/db.ts, store/store.ts, store/records.ts): how it is created (private, WAL), its
 * migrations (an older file is brought forward and keeps its tasks; a newer one is refused and left untouched),
 * transactions (all or nothing, never across an await), documents validated on every read, and the 0.1 layout.
 */
import fs from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import * as z from 'zod/mini';
import { afterEach, describe, expect, it } from 'vitest';
import { NewerSchemaError, StoreError } from '../mcp-server/src/errors.js';
import { Db } from '../mcp-server/src/store/db.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../mcp-server/src/store/migrations.js';
import type { RecordType } from '../mcp-server/src/store/records.js';
import { Store } from '../mcp-server/src/store/store.js';
import { connect, dbRows, structured, tempProject, type TempProject } from './helpers.js';

let p: TempProject | undefined;
afterEach(() => {
  p?.cleanup();
  p = undefined;
});

const NOTE: RecordType<{ text: string }> = { kind: 'note', schema: z.strictObject({ text: z.string() }) };
const dbFile = (root: string) => path.join(root, '.loki', 'loki.db');

describe('creation', () => {
  it('creates .loki/ 0700 and loki.db 0600 in WAL mode at the current schema version', () => {
    p = tempProject();
    const store = Store.open(p.root, p.home, 'test');
    store.mutate(
      () => store.records.write('n', NOTE, { text: 'x' }),
      () => ({ action: 'note.write' }),
    );
    expect(fs.statSync(path.join(p.root, '.loki')).mode & 0o777).toBe(0o700);
    for (const f of ['loki.db', 'loki.db-wal', 'loki.db-shm'])
      expect(fs.statSync(path.join(p.root, '.loki', f)).mode & 0o777, f).toBe(0o600);
    expect(store.db.get<{ journal_mode: string }>('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
    expect(store.db.version()).toBe(SCHEMA_VERSION);
    store.close();
  });

  it('an existing .loki/ open to others is made private', () => {
    p = tempProject();
    fs.mkdirSync(path.join(p.root, '.loki'), { mode: 0o755 });
    fs.chmodSync(path.join(p.root, '.loki'), 0o755);
    Store.open(p.root, p.home, 'test').close();
    expect(fs.statSync(path.join(p.root, '.loki')).mode & 0o777).toBe(0o700);
  });

  it('refuses a loki.db that is a symbolic link, naming the fix', () => {
    p = tempProject();
    fs.mkdirSync(path.join(p.root, '.loki'));
    fs.writeFileSync(path.join(p.home, 'elsewhere.db'), '');
    fs.symlinkSync(path.join(p.home, 'elsewhere.db'), dbFile(p.root));
    expect(() => Store.open(p!.root, p!.home, 'test')).toThrow(/symbolic link.*mv \.loki\/loki\.db/);
    expect(fs.readFileSync(path.join(p.home, 'elsewhere.db'), 'utf8')).toBe('');
  });

  it('refuses a .loki/ of the 0.1 file layout with what to do, and writes nothing', () => {
    p = tempProject();
    fs.mkdirSync(path.join(p.root, '.loki/state'), { recursive: true });
    fs.writeFileSync(path.join(p.root, '.loki/state/run.json'), '{}');
    expect(() => Store.open(p!.root, p!.home, 'test')).toThrow(StoreError);
    expect(() => Store.open(p!.root, p!.home, 'test')).toThrow(/loki-mode 0\.1.*mv \.loki \.loki-0\.1/);
    expect(fs.existsSync(dbFile(p.root))).toBe(false);
  });
});

describe('migrations', () => {
  /** A database as the given schema version left it (only its migrations run). */
  function databaseAt(version: number, root: string): DatabaseSync {
    fs.mkdirSync(path.join(root, '.loki'), { recursive: true, mode: 0o700 });
    const conn = new DatabaseSync(dbFile(root));
    conn.exec('PRAGMA journal_mode = WAL');
    for (const m of MIGRATIONS.filter((x) => x.version <= version)) m.up({ exec: (sql: string) => conn.exec(sql) });
    conn.exec(`PRAGMA user_version = ${version}`);
    return conn;
  }

  it('the migrations are numbered 1, 2, ... without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });

  it('a database written by schema 1 is migrated at open, and its run and tasks carry on: a task is claimable', async () => {
    p = tempProject();
    // A run with two tasks, written by a server at schema 1: taken from a current run, then the database is
    // rebuilt as schema 1 with the same rows.
    const c = await connect(p);
    await c.call('loki_start', { specText: '# Old run\n' });
    structured(
      await c.call('loki_task_add', {
        tasks: [
          { id: 'old-1', title: 'first', phase: 'BOOTSTRAP' },
          { id: 'old-2', title: 'second', phase: 'BOOTSTRAP' },
        ],
      }),
    );
    await c.close();
    const docs = dbRows<{ key: string; kind: string; body: string }>(p.root, 'SELECT key, kind, body FROM docs');
    const tasks = dbRows<{ id: string; body: string }>(p.root, 'SELECT id, body FROM tasks');
    const audit = dbRows<Record<string, string | number | null>>(p.root, 'SELECT * FROM audit ORDER BY seq');
    for (const f of ['loki.db', 'loki.db-wal', 'loki.db-shm'])
      fs.rmSync(path.join(p.root, '.loki', f), { force: true });
    const old = databaseAt(1, p.root);
    for (const d of docs) old.prepare('INSERT INTO docs (key, kind, body) VALUES (?, ?, ?)').run(d.key, d.kind, d.body);
    for (const t of tasks) old.prepare('INSERT INTO tasks (id, body) VALUES (?, ?)').run(t.id, t.body);
    for (const a of audit)
      old
        .prepare('INSERT INTO audit (seq, ts, actor, action, target, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(a.seq!, a.ts!, a.actor!, a.action!, a.target!, a.data!, a.prev!, a.hash!);
    old.close();
    expect(dbRows(p.root, 'PRAGMA user_version')).toEqual([{ user_version: 1 }]);

    const again = await connect(p);
    const claimed = structured<{ task: { id: string } | null }>(
      await again.call('loki_task_claim', { agent: 'after-upgrade', taskId: 'old-1' }),
    );
    expect(claimed.task?.id).toBe('old-1');
    await again.close();
    expect(dbRows(p.root, 'PRAGMA user_version')).toEqual([{ user_version: SCHEMA_VERSION }]);
    expect(dbRows(p.root, 'SELECT key FROM meta')).toEqual([{ key: 'migrated_by' }]);
    // The history came across whole: the chain still verifies against the anchor written before the upgrade.
    const store = Store.open(p.root, p.home, 'test');
    expect(store.audit.verify()).toMatchObject({ ok: true });
    store.close();
  });

  it('a database from a newer loki-mode is refused with the upgrade named, and left as it was', async () => {
    p = tempProject();
    const newer = databaseAt(SCHEMA_VERSION, p.root);
    newer.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    newer.prepare('INSERT INTO docs (key, kind, body) VALUES (?, ?, ?)').run('keep', 'note', '{"text":"mine"}');
    newer.close();
    const before = fs.readFileSync(dbFile(p.root));
    expect(() => Db.open(path.join(p!.root, '.loki'))).toThrow(NewerSchemaError);
    expect(() => Db.open(path.join(p!.root, '.loki'))).toThrow(
      /newer loki-mode \(schema \d+; this one knows up to \d+\): upgrade loki-mode \(npm install -g loki-mode@latest/,
    );
    // Through the tools: a clear error, not a crash.
    const c = await connect(p);
    const r = await c.call('loki_status', {});
    expect(r.isError).toBe(true);
    expect((r.content[0] as { text: string }).text).toMatch(/upgrade loki-mode/);
    await c.close();
    expect(fs.readFileSync(dbFile(p.root)).equals(before)).toBe(true);
    expect(dbRows(p.root, 'SELECT body FROM docs')).toEqual([{ body: '{"text":"mine"}' }]);
  });
});

describe('transactions and documents', () => {
  it('a change that throws leaves nothing; a nested transaction joins the outer one; a promise is refused', () => {
    p = tempProject();
    const store = Store.open(p.root, p.home, 'test');
    expect(() =>
      store.tx(() => {
        store.records.write('a', NOTE, { text: 'first' });
        store.tx(() => store.records.write('b', NOTE, { text: 'inner' }));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.records.list('', NOTE)).toEqual([]);
    expect(() => store.tx(() => Promise.resolve(1) as unknown as number)).toThrow(/synchronous/);
    expect(store.db.inTransaction).toBe(false);
    store.tx(() => store.records.write('a', NOTE, { text: 'kept' }));
    expect(store.records.read('a', NOTE)).toEqual({ text: 'kept' });
    store.close();
  });

  it('a read transaction sees one moment while another connection commits, and refuses a write inside it', () => {
    p = tempProject();
    const store = Store.open(p.root, p.home, 'test');
    store.tx(() => store.records.write('a', NOTE, { text: 'before' }));
    const other = Store.open(p.root, p.home, 'other');
    const seen = store.db.read(() => {
      const first = store.records.read('a', NOTE);
      other.tx(() => other.records.write('a', NOTE, { text: 'after' }));
      return [first, store.records.read('a', NOTE)];
    });
    expect(seen).toEqual([{ text: 'before' }, { text: 'before' }]);
    expect(store.records.read('a', NOTE)).toEqual({ text: 'after' });
    expect(() => store.db.read(() => store.tx(() => store.records.write('b', NOTE, { text: 'x' })))).toThrow(
      /write transaction inside Db\.read/,
    );
    expect(() => store.db.read(() => store.db.run(`INSERT INTO meta (key, value) VALUES ('x', 'y')`))).toThrow(
      /write inside Db\.read/,
    );
    expect(store.db.get('SELECT value FROM meta WHERE key = ?', 'x')).toBeUndefined();
    expect(store.db.inTransaction).toBe(false);
    expect(store.records.read('b', NOTE)).toBeUndefined();
    other.close();
    store.close();
  });

  it('a document changed outside loki-mode is reported as damaged with the fix, never hidden or moved', () => {
    p = tempProject();
    const store = Store.open(p.root, p.home, 'test');
    store.tx(() => store.records.write('n', NOTE, { text: 'ok' }));
    const other = new DatabaseSync(dbFile(p.root));
    other.prepare("UPDATE docs SET body = '{\"text\":42}' WHERE key = 'n'").run();
    other.close();
    expect(() => store.records.read('n', NOTE)).toThrow(
      /note record "n" in \.loki\/loki\.db does not match its schema \(text: .*\).*run loki doctor/,
    );
    expect(dbRows(p.root, "SELECT body FROM docs WHERE key = 'n'")).toEqual([{ body: '{"text":42}' }]);
    // Writing an invalid value is a bug, caught before it reaches the table.
    expect(() => store.tx(() => store.records.write('m', NOTE, { text: 1 } as unknown as { text: string }))).toThrow(
      /internal: refusing to write an invalid note record/,
    );
    store.close();
  });

  it('list and keys return documents of one kind under a prefix, in key order', () => {
    p = tempProject();
    const store = Store.open(p.root, p.home, 'test');
    store.tx(() => {
      for (const k of ['x/2', 'x/1', 'y/1', 'x/10']) store.records.write(k, NOTE, { text: k });
    });
    expect(store.records.keys('x/', NOTE)).toEqual(['x/1', 'x/10', 'x/2']);
    expect(store.records.list('y/', NOTE)).toEqual([{ text: 'y/1' }]);
    expect(store.records.create('x/1', NOTE, { text: 'again' })).toBe(false);
    expect(store.records.read('x/1', NOTE)).toEqual({ text: 'x/1' });
    store.close();
  });
});
