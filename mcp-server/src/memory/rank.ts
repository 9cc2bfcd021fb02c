/**
 * Ranking, pure: the text fields and their weights, query terms, and the final score (BM25 x recency x
 * task-type/phase/confidence boosts, ties broken by id). No I/O.
 *
 * Project memory is ranked inside SQLite (memory/items.ts): FTS5's bm25 with FIELD_BOOST as column weights,
 * multiplied by `scoreSql`, which is `finalScore` written in SQL so that the database can keep only the best
 * few rows instead of handing every match to JavaScript. Solutions are ranked here with `finalScore`. Both
 * read the constants of RANKING; tests/memory-domain.test.ts checks that the two agree.
 */

/** The searchable text of a document, by field. Boosts: title > tags > summary > body. */
export interface SearchDoc {
  id: string;
  title: string;
  tags: string;
  summary: string;
  body: string;
}

export const SEARCH_FIELDS = ['title', 'tags', 'summary', 'body'] as const;
export const FIELD_BOOST = { title: 3, tags: 2, summary: 1.5, body: 1 } as const;

const STOP_WORDS = new Set(
  'a an and are as at be but by for from has have how i if in into is it its of on or so that the their then there these this to was were what when where which while who why will with you your do does did not no can could should would we our they them'.split(
    ' ',
  ),
);

/** Lower-case, drop stop words and one-letter terms, and strip the commonest English suffixes. */
export function processTerm(term: string): string | null {
  const t = term.toLowerCase();
  if (t.length < 2 || STOP_WORDS.has(t)) return null;
  return stem(t);
}

export function stem(t: string): string {
  if (t.length <= 3 || /\d/.test(t)) return t;
  if (t.endsWith('ies') && t.length > 4) return `${t.slice(0, -3)}y`;
  if (t.endsWith('sses')) return t.slice(0, -2);
  if (t.endsWith('ing') && t.length > 5) return t.slice(0, -3);
  if (t.endsWith('ed') && t.length > 4 && !t.endsWith('eed')) return t.slice(0, -2);
  if (t.endsWith('s') && !t.endsWith('ss') && !t.endsWith('us') && !t.endsWith('is')) return t.slice(0, -1);
  return t;
}

/** More terms than this in one query add time, not precision (a pasted log line is hundreds of words). */
export const MAX_QUERY_TERMS = 32;

/**
 * The words of a query worth searching for: split where FTS5's unicode61 tokenizer splits (anything but letters
 * and digits), lower-cased, without stop words and one-letter terms, each once, in order. Unstemmed: the
 * index's own stemmer (porter) stems them the same way it stemmed the documents.
 */
export function searchTerms(query: string): string[] {
  const out = new Set<string>();
  for (const raw of query.split(/[^\p{L}\p{N}]+/u)) {
    const t = raw.toLowerCase();
    if (processTerm(t) === null) continue;
    out.add(t);
    if (out.size === MAX_QUERY_TERMS) break;
  }
  return [...out];
}

export interface RankContext {
  now: number;
  taskType?: string | undefined;
  phase?: string | undefined;
}

export const RANKING = {
  /** Recency: 1 for something recorded now, falling towards the floor with this half-life. */
  recencyFloor: 0.6,
  halfLifeDays: 30,
  /** The item's task type is the one asked about (case-insensitive). */
  taskTypeBoost: 1.25,
  /** The item's phase is the one asked about. */
  phaseBoost: 1.1,
  /** A pattern's confidence c in [0, 1] multiplies by base + span * c. */
  confidenceBase: 0.85,
  confidenceSpan: 0.3,
} as const;

/** 1 for something recorded now, falling towards 0.6 with a 30-day half-life: old lessons still count. */
export function recencyFactor(at: string, now: number): number {
  const t = Date.parse(at);
  if (!Number.isFinite(t)) return RANKING.recencyFloor;
  const days = Math.max(0, (now - t) / 86_400_000);
  return RANKING.recencyFloor + (1 - RANKING.recencyFloor) * 0.5 ** (days / RANKING.halfLifeDays);
}

export interface Rankable {
  id: string;
  at: string;
  taskType: string | null;
  phase: string | null;
  confidence: number | null;
}

export function finalScore(bm25: number, item: Rankable, ctx: RankContext): number {
  let s = bm25 * recencyFactor(item.at, ctx.now);
  if (ctx.taskType && item.taskType && item.taskType.toLowerCase() === ctx.taskType.toLowerCase())
    s *= RANKING.taskTypeBoost;
  if (ctx.phase && item.phase === ctx.phase) s *= RANKING.phaseBoost;
  if (item.confidence !== null) s *= RANKING.confidenceBase + RANKING.confidenceSpan * item.confidence;
  return s;
}

/**
 * `finalScore` as an SQL expression over `bm25` (an SQL expression) and the columns `at_s` (recorded at, in
 * seconds since the epoch; NULL when unreadable), `task_type`, `phase` and `confidence` of the table alias `m`,
 * with the parameters :now (seconds), :task_type and :phase (NULL when not asked). Task types are compared
 * with SQLite's lower(), which folds ASCII only: task types are short ASCII words.
 */
export function scoreSql(bm25: string): string {
  const r = RANKING;
  const halfLifeSeconds = r.halfLifeDays * 86_400;
  return [
    `(${bm25})`,
    `coalesce(${r.recencyFloor} + ${1 - r.recencyFloor} * pow(0.5, max(0, :now - m.at_s) / ${halfLifeSeconds}.0), ${r.recencyFloor})`,
    `(CASE WHEN lower(m.task_type) = lower(:task_type) THEN ${r.taskTypeBoost} ELSE 1 END)`,
    `(CASE WHEN m.phase = :phase THEN ${r.phaseBoost} ELSE 1 END)`,
    `coalesce(${r.confidenceBase} + ${r.confidenceSpan} * m.confidence, 1)`,
  ].join(' * ');
}

/** Highest score first; equal scores (to 1e-9) by id, so the order never depends on insertion. */
export function compareRanked(a: { id: string; score: number }, b: { id: string; score: number }): number {
  const d = b.score - a.score;
  if (Math.abs(d) > 1e-9) return d;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
