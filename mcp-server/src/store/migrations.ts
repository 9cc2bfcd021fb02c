/**
 * The database schema, as numbered migrations. Db.open runs every migration above the file's
 * `PRAGMA user_version`, each in its own transaction, and refuses a file whose version is above SCHEMA_VERSION.
 * Rules: never edit a migration that has shipped; add the next number. A migration may transform data in
 * JavaScript, so a record shape change is a migration, not a quarantine.
 */
/** What a migration gets: the connection, inside the migration's transaction. */
export interface MigrationDb {
  exec(sql: string): void;
}

export interface Migration {
  version: number;
  what: string;
  up(db: MigrationDb): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    what: 'documents, the audit chain',
    up(db) {
      db.exec(`
        -- Small records kept whole, validated by their zod schema on every read: the run, sessions, trust state,
        -- checklists, councils, verifications, checkpoints. key is the record's name ("run", "session/<id>").
        CREATE TABLE docs (
          key  TEXT PRIMARY KEY,
          kind TEXT NOT NULL,
          body TEXT NOT NULL CHECK (json_valid(body))
        ) STRICT;
        CREATE INDEX docs_kind ON docs (kind, key);

        -- The hash-chained audit log (audit/chain.ts): one row per entry, appended in the same transaction as
        -- the change it records. data is canonical JSON or NULL.
        CREATE TABLE audit (
          seq    INTEGER PRIMARY KEY,
          ts     TEXT NOT NULL,
          actor  TEXT NOT NULL,
          action TEXT NOT NULL,
          target TEXT,
          data   TEXT,
          prev   TEXT NOT NULL,
          hash   TEXT NOT NULL
        ) STRICT;

        -- The task queue. body is the whole task record (queue/records.ts validates it); the columns the queue
        -- searches and orders by are generated from it by SQLite, so they can never disagree with it.
        CREATE TABLE tasks (
          id            TEXT PRIMARY KEY,
          body          TEXT NOT NULL CHECK (json_valid(body)),
          seq           INTEGER NOT NULL GENERATED ALWAYS AS (body ->> '$.seq') STORED,
          status        TEXT NOT NULL GENERATED ALWAYS AS (body ->> '$.status') STORED,
          -- claim order (domain/tasks.ts claimOrder): priority, fresh work before retries, creation order
          rank          INTEGER NOT NULL GENERATED ALWAYS AS (
                          CASE body ->> '$.priority' WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
                        ) STORED,
          phase         TEXT NOT NULL GENERATED ALWAYS AS (body ->> '$.phase') STORED,
          lease_agent   TEXT GENERATED ALWAYS AS (body ->> '$.lease.agent') STORED,
          lease_expires TEXT GENERATED ALWAYS AS (body ->> '$.lease.expiresAt') STORED
        ) STRICT;
        CREATE UNIQUE INDEX tasks_seq ON tasks (seq);
        -- Claimable tasks in claim order (queue.ts claimOrder reads it in index order and stops at the first fit).
        CREATE INDEX tasks_claim ON tasks (rank, status = 'failed', seq) WHERE status IN ('pending', 'failed');
        CREATE INDEX tasks_lease ON tasks (status, lease_expires);

        -- Queues of earlier runs, moved here whole when a new run starts (ids restart with each run).
        CREATE TABLE task_archive (
          run_id TEXT NOT NULL,
          id     TEXT NOT NULL,
          body   TEXT NOT NULL,
          PRIMARY KEY (run_id, id)
        ) STRICT;

        -- ---- checkpoints (checkpoints/records.ts) ------------------------------------------------------------
        -- One row per checkpoint: its id is cp-<seq>, its state snapshot the file .loki/checkpoints/cp-<seq>/loki.db
        -- and its code the git ref refs/loki/checkpoints/cp-<seq>. A rollback never restores this table (the
        -- undo is a checkpoint). AUTOINCREMENT: an id that retention removed is never given to another one.
        CREATE TABLE checkpoints (
          seq  INTEGER PRIMARY KEY AUTOINCREMENT,
          body TEXT NOT NULL CHECK (json_valid(body)),
          type TEXT NOT NULL GENERATED ALWAYS AS (body ->> '$.type') STORED
        ) STRICT;
        -- ---- end of checkpoints -------------------------------------------------------------------------------
        -- ---- memory (memory/items.ts) ------------------------------------------------------------------------
        -- Memory items. body is the whole item (memory/model.ts validates it on every read); the columns SQL
        -- filters, orders and ranks by are generated from it, so they can never disagree with it. rid aliases
        -- the rowid so that it is stable: the full-text index refers to items by it, and VACUUM may renumber
        -- rowids that are not aliased.
        CREATE TABLE memory (
          rid        INTEGER PRIMARY KEY,
          id         TEXT NOT NULL UNIQUE,
          body       TEXT NOT NULL CHECK (json_valid(body)),
          layer      TEXT NOT NULL GENERATED ALWAYS AS (body ->> '$.layer') STORED,
          at         TEXT NOT NULL GENERATED ALWAYS AS (body ->> '$.provenance.at') STORED,
          -- the recording time in seconds, for the recency factor of the ranking (NULL when not a date)
          at_s       REAL GENERATED ALWAYS AS (unixepoch(body ->> '$.provenance.at', 'subsec')) STORED,
          run        TEXT GENERATED ALWAYS AS (body ->> '$.provenance.run') STORED,
          task       TEXT GENERATED ALWAYS AS (body ->> '$.provenance.task') STORED,
          phase      TEXT GENERATED ALWAYS AS (body ->> '$.phase') STORED,
          task_type  TEXT GENERATED ALWAYS AS (body ->> '$.taskType') STORED,
          confidence REAL GENERATED ALWAYS AS (body ->> '$.confidence') STORED,
          tags       TEXT NOT NULL GENERATED ALWAYS AS (body -> '$.tags') STORED
        ) STRICT;
        -- Everything a search reads of a match, keyed by rid: searches join through this index, a fraction of
        -- the table's size, instead of reading each match's whole row (memory/items.ts).
        CREATE INDEX memory_rank ON memory (rid, id, layer, phase, tags, at_s, task_type, confidence);
        -- loki memory list (newest first); consolidation's episodes; the patterns and skills usedBy reads
        CREATE INDEX memory_layer ON memory (layer, at, id);
        CREATE INDEX memory_time ON memory (at, id);
        -- timelines: the items of one task of a run, or of one run, in time order
        CREATE INDEX memory_thread ON memory (run, task, at, id);

        -- The text search sees of an item, by field (memory/rank.ts weighs them: title > tags > summary > body).
        CREATE VIEW memory_text (rid, title, tags, summary, body) AS
          SELECT m.rid,
            m.body ->> '$.title',
            (SELECT group_concat(value, ' ') FROM json_each(m.body, '$.tags')),
            concat_ws(char(10),
              (SELECT group_concat(value, char(10)) FROM json_each(m.body, '$.lessons')),
              m.body ->> '$.when',
              (SELECT group_concat(value, char(10)) FROM json_each(m.body, '$.errors'))),
            concat_ws(char(10),
              m.body ->> '$.body',
              (SELECT group_concat(value, char(10)) FROM json_each(m.body, '$.steps')),
              (SELECT group_concat(value, char(10)) FROM json_each(m.body, '$.files')),
              m.body ->> '$.taskType')
          FROM memory AS m;

        -- The full-text index of memory_text. Contentless (the text is in memory.body already) with deletes
        -- allowed; porter stems English ("migrations", "migrating" -> "migrat"), unicode61 folds case and
        -- accents. The triggers keep it in step with the table, in the writer's transaction, whoever writes.
        CREATE VIRTUAL TABLE memory_fts USING fts5 (
          title, tags, summary, body,
          content = '', contentless_delete = 1, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER memory_fts_insert AFTER INSERT ON memory BEGIN
          INSERT INTO memory_fts (rowid, title, tags, summary, body) SELECT rid, title, tags, summary, body FROM memory_text WHERE rid = new.rid;
        END;
        CREATE TRIGGER memory_fts_update AFTER UPDATE ON memory BEGIN
          DELETE FROM memory_fts WHERE rowid = old.rid;
          INSERT INTO memory_fts (rowid, title, tags, summary, body) SELECT rid, title, tags, summary, body FROM memory_text WHERE rid = new.rid;
        END;
        CREATE TRIGGER memory_fts_delete AFTER DELETE ON memory BEGIN
          DELETE FROM memory_fts WHERE rowid = old.rid;
        END;
        -- ---- end of memory -------------------------------------------------------------------------------------
      `);
    },
  },
  {
    version: 2,
    what: 'meta: which loki-mode created the database and which last migrated it',
    up(db) {
      // Read by loki doctor, so a report about an old or odd database says where it came from.
      db.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT');
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
