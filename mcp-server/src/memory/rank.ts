/**
 * Ranking, pure: the text fields and term processing the BM25 index uses, and the final score
 * (BM25 x recency x task-type/phase/confidence boosts, ties broken by id). No I/O.
 */
import type { MemoryItem } from './model.js';

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

export function docOfItem(item: MemoryItem): SearchDoc {
  return {
    id: item.id,
    title: item.title,
    tags: item.tags.join(' '),
    summary: [...item.lessons, item.when ?? '', ...item.errors].join('\n'),
    body: [item.body, ...item.steps, ...item.files, item.taskType ?? ''].join('\n'),
  };
}

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

export interface RankContext {
  now: number;
  taskType?: string | undefined;
  phase?: string | undefined;
}

export const RECENCY_HALF_LIFE_DAYS = 30;

/** 1 for something recorded now, falling towards 0.6 with a 30-day half-life: old lessons still count. */
export function recencyFactor(at: string, now: number): number {
  const t = Date.parse(at);
  if (!Number.isFinite(t)) return 0.6;
  const days = Math.max(0, (now - t) / 86_400_000);
  return 0.6 + 0.4 * 0.5 ** (days / RECENCY_HALF_LIFE_DAYS);
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
  if (ctx.taskType && item.taskType && item.taskType.toLowerCase() === ctx.taskType.toLowerCase()) s *= 1.25;
  if (ctx.phase && item.phase === ctx.phase) s *= 1.1;
  if (item.confidence !== null) s *= 0.85 + 0.3 * item.confidence;
  return s;
}

/** Highest score first; equal scores (to 1e-9) by id, so the order never depends on insertion. */
export function compareRanked(a: { id: string; score: number }, b: { id: string; score: number }): number {
  const d = b.score - a.score;
  if (Math.abs(d) > 1e-9) return d;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
