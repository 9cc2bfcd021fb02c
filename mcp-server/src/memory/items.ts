/**
 * Memory items in `.loki/loki.db`: the `memory` table (one row per item, its JSON in `body`) and the full-text
 * index `memory_fts` that SQLite keeps in step with it by triggers (store/migrations.ts has the schema). Every
 * read validates the item against its schema (model.ts); an item that no longer matches was changed outside
 * loki-mode and is reported by id, never repaired, moved or silently dropped.
 *
 * Search is one statement: FTS5 finds the items that contain any of the query's words, bm25 scores them with
 * the field weights of rank.ts, the ranking factors of rank.ts multiply that score, and SQLite keeps the best
 * `limit` rows. Only those rows are read and decoded, so a search costs about the same at 100 and at 10,000
 * items and nothing has to be loaded or cached first. FTS5's bm25 gives no weight to a word found in more than
 * half of the items (its idf is floored at ~0): such a word still selects items but does not rank them, which
 * in a project of a handful of items makes every score close to 0 (the order is still by the other words,
 * the fields and the factors).
 */
import { DamagedRecordError } from '../errors.js';
import type { Db } from '../store/db.js';
import { damagedMessage, parseStored, safeParse } from '../store/schema.js';
import { memoryItemSchema, type Layer, type MemoryItem } from './model.js';
import { FIELD_BOOST, SEARCH_FIELDS, scoreSql, searchTerms } from './rank.js';

interface ItemRow {
  id: string;
  body: string;
}

/** The item in a row, or why it cannot be used. */
export function decodeItem(row: ItemRow): { item: MemoryItem } | { problem: string } {
  const r = parseStored(memoryItemSchema(), row.body, row.id);
  return 'issue' in r ? { problem: damagedMessage(`memory item "${row.id}"`, r.issue) } : { item: r.value };
}

/** Decode rows, keeping the good items in order and naming the damaged ones in `problems`. */
function decodeAll(rows: ItemRow[], problems: string[]): MemoryItem[] {
  const out: MemoryItem[] = [];
  for (const row of rows) {
    const d = decodeItem(row);
    if ('item' in d) out.push(d.item);
    else problems.push(d.problem);
  }
  return out;
}

/** Decode rows for a change that is computed from them: one damaged item stops it. */
function decodeStrict(rows: ItemRow[]): MemoryItem[] {
  return rows.map((row) => {
    const d = decodeItem(row);
    if ('problem' in d) throw new DamagedRecordError(d.problem);
    return d.item;
  });
}

/** Insert new items and replace changed ones (call inside the caller's transaction). */
export function putItems(db: Db, items: readonly MemoryItem[]): void {
  for (const item of items) {
    const parsed = safeParse(memoryItemSchema(), item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `internal: refusing to write an invalid memory item ${item.id} (${issue?.path.join('.') || 'item'}: ${issue?.message ?? 'invalid'})`,
      );
    }
    db.run(
      'INSERT INTO memory (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body',
      item.id,
      JSON.stringify(item),
    );
  }
}

/** Which of `ids` name stored items. */
export function existingIds(db: Db, ids: readonly string[]): Set<string> {
  return new Set(
    db
      .all<{ id: string }>('SELECT id FROM memory WHERE id IN (SELECT value FROM json_each(?))', JSON.stringify(ids))
      .map((r) => r.id),
  );
}

/** The stored items among `ids`, by id, and the damaged ones with what is wrong with each. */
export function readItems(
  db: Db,
  ids: readonly string[],
): { items: Map<string, MemoryItem>; damaged: Map<string, string> } {
  const items = new Map<string, MemoryItem>();
  const damaged = new Map<string, string>();
  for (const row of db.all<ItemRow>(
    'SELECT id, body FROM memory WHERE id IN (SELECT value FROM json_each(?))',
    JSON.stringify(ids),
  )) {
    const d = decodeItem(row);
    if ('item' in d) items.set(row.id, d.item);
    else damaged.set(row.id, d.problem);
  }
  return { items, damaged };
}

/** For each of `ids`, the patterns and skills that list it among their sources, in id order. */
export function usedBy(db: Db, ids: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const rows = db.all<{ source: string; id: string }>(
    `SELECT s.value AS source, m.id FROM memory AS m, json_each(m.body, '$.sources') AS s
      WHERE m.layer IN ('pattern', 'skill') AND s.value IN (SELECT value FROM json_each(?)) ORDER BY m.id`,
    JSON.stringify(ids),
  );
  for (const r of rows) out.set(r.source, [...(out.get(r.source) ?? []), r.id]);
  return out;
}

// ---- search -------------------------------------------------------------------------------------------------

export interface ItemQuery {
  query: string;
  layer?: Layer | undefined;
  phase?: string | undefined;
  /** Lower-case; every one must be present. */
  tags?: string[] | undefined;
  /** Boosts (rank.ts). */
  taskType?: string | undefined;
  now: number;
  limit: number;
}

export interface ItemHit {
  item: MemoryItem;
  score: number;
}

export interface ItemSearch {
  hits: ItemHit[];
  /** How many items matched (before the cut to `limit`). */
  matched: number;
  problems: string[];
}

/**
 * The FTS5 query for some search terms: any of them, each as a quoted string (so no word is read as FTS5
 * syntax), and words of four letters or more also as a prefix, so "auth" finds "authentication".
 */
export function ftsQuery(terms: readonly string[]): string {
  return terms.map((t) => `"${t.replaceAll('"', '""')}"${t.length >= 4 ? '*' : ''}`).join(' OR ');
}

const BM25 = `bm25(${SEARCH_FIELDS.map((f) => FIELD_BOOST[f]).join(', ')})`;

/**
 * The matching items and their filters. The join goes through memory_rank, an index that holds every column
 * ranking and filtering read: looking each match up in the table instead would read its whole row (the item's
 * JSON) and cost several times the search itself.
 */
const MATCHES = `FROM memory_fts AS f JOIN memory AS m INDEXED BY memory_rank ON m.rid = f.rowid
  WHERE f.memory_fts MATCH :match
    AND (:layer IS NULL OR m.layer = :layer)
    AND (:phase IS NULL OR m.phase = :phase)
    AND (:tags IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(:tags) AS want WHERE want.value NOT IN (SELECT value FROM json_each(m.tags))))`;

/** The best `limit` matches, ranked, with their items (read for those rows only, after the cut). */
const TOP_SQL = `SELECT top.id, top.score, item.body FROM (
    SELECT m.rid, m.id, ${scoreSql('-f.rank')} AS score ${MATCHES} AND f.rank MATCH '${BM25}' ORDER BY score DESC, m.id LIMIT :limit
  ) AS top JOIN memory AS item ON item.rid = top.rid ORDER BY top.score DESC, top.id`;
const COUNT_SQL = `SELECT count(*) AS n ${MATCHES}`;
/** Without filters every match is an item (the triggers keep the two one to one): the index alone counts them. */
const COUNT_ALL_SQL = 'SELECT count(*) AS n FROM memory_fts WHERE memory_fts MATCH :match';

export function searchItems(db: Db, q: ItemQuery): ItemSearch {
  const terms = searchTerms(q.query);
  if (terms.length === 0) return { hits: [], matched: 0, problems: [] };
  const filters = {
    match: ftsQuery(terms),
    layer: q.layer ?? null,
    phase: q.phase || null,
    tags: q.tags?.length ? JSON.stringify(q.tags) : null,
  };
  const top = db
    .statement(TOP_SQL)
    .all({ ...filters, now: q.now / 1000, task_type: q.taskType || null, limit: q.limit }) as unknown as (ItemRow & {
    score: number;
  })[];
  let matched = top.length;
  if (top.length === q.limit) {
    const count =
      filters.layer === null && filters.phase === null && filters.tags === null
        ? db.statement(COUNT_ALL_SQL).get({ match: filters.match })
        : db.statement(COUNT_SQL).get(filters);
    matched = Number((count as { n: number }).n);
  }
  const problems: string[] = [];
  const hits: ItemHit[] = [];
  for (const row of top) {
    const d = decodeItem(row);
    if ('item' in d) hits.push({ item: d.item, score: row.score });
    else problems.push(d.problem);
  }
  return { hits, matched, problems };
}

// ---- timeline and list -------------------------------------------------------------------------------------

/** What links the items of a timeline: the anchor's task (in its run), its run, or nothing. */
export type ThreadContext = 'task' | 'run' | 'all';

const THREAD_WHERE: Readonly<Record<ThreadContext, string>> = {
  task: 'run IS :run AND task = :task',
  run: 'run = :run',
  all: '1',
};

export interface Thread {
  context: ThreadContext;
  /** Items of the context, in time order, around the anchor. */
  items: MemoryItem[];
  /** How many items the context holds. */
  total: number;
  problems: string[];
}

/** About `size` items of the anchor's context in time order, the anchor among them; undefined if no such item. */
export function threadAround(db: Db, id: string, size: number): Thread | undefined {
  const anchor = db.get<{ id: string; at: string; run: string | null; task: string | null }>(
    'SELECT id, at, run, task FROM memory WHERE id = ?',
    id,
  );
  if (!anchor) return undefined;
  const context: ThreadContext = anchor.task ? 'task' : anchor.run ? 'run' : 'all';
  const where = THREAD_WHERE[context];
  const params: Record<string, string | null> =
    context === 'task' ? { run: anchor.run, task: anchor.task } : context === 'run' ? { run: anchor.run } : {};
  const pos = db
    .statement(
      `SELECT count(*) AS total, count(*) FILTER (WHERE (at, id) < (:at, :id)) AS before FROM memory WHERE ${where}`,
    )
    .get({ ...params, at: anchor.at, id: anchor.id }) as {
    total: number;
    before: number;
  };
  const start = Math.max(0, Math.min(pos.before - Math.floor((size - 1) / 2), pos.total - size));
  const rows = db
    .statement(`SELECT id, body FROM memory WHERE ${where} ORDER BY at, id LIMIT :size OFFSET :start`)
    .all({ ...params, size, start }) as unknown as ItemRow[];
  const problems: string[] = [];
  return { context, items: decodeAll(rows, problems), total: pos.total, problems };
}

/** The newest items first (by recording time, then id), and how many there are. */
export function newestItems(
  db: Db,
  layer: Layer | undefined,
  limit: number,
): { items: MemoryItem[]; total: number; problems: string[] } {
  const problems: string[] = [];
  if (layer) {
    const rows = db.all<ItemRow>(
      'SELECT id, body FROM memory WHERE layer = ? ORDER BY at DESC, id DESC LIMIT ?',
      layer,
      limit,
    );
    const total = db.get<{ n: number }>('SELECT count(*) AS n FROM memory WHERE layer = ?', layer)!.n;
    return { items: decodeAll(rows, problems), total, problems };
  }
  const rows = db.all<ItemRow>('SELECT id, body FROM memory ORDER BY at DESC, id DESC LIMIT ?', limit);
  const total = db.get<{ n: number }>('SELECT count(*) AS n FROM memory')!.n;
  return { items: decodeAll(rows, problems), total, problems };
}

// ---- consolidation -----------------------------------------------------------------------------------------

/**
 * What consolidation works from: the newest `maxEpisodes` episodes (ids sort by time) and the patterns it made
 * before (ids "pt-c-..."). A damaged item stops it: a plan made without it could supersede good patterns.
 */
export function consolidationInput(db: Db, maxEpisodes: number): { episodes: MemoryItem[]; patterns: MemoryItem[] } {
  const episodes = db.all<ItemRow>(
    "SELECT id, body FROM memory WHERE layer = 'episode' ORDER BY id DESC LIMIT ?",
    maxEpisodes,
  );
  const patterns = db.all<ItemRow>(
    "SELECT id, body FROM memory WHERE id >= 'pt-c-' AND id < 'pt-c.' AND layer = 'pattern' ORDER BY id",
  );
  return { episodes: decodeStrict(episodes), patterns: decodeStrict(patterns) };
}
