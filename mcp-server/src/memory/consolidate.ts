/**
 * Consolidation, pure and deterministic: group similar episodes and derive one pattern (or anti-pattern) per
 * group of at least two, linked to its episodes. Episodes are never changed or deleted.
 *
 * Similarity: two episodes are alike when they share a normalised error signature, or when the Jaccard
 * similarity of their key terms (title, lessons, errors, task type) is at least 0.4. Groups are built by
 * single-link clustering over the episodes in id order (union-find), so the same episodes always give the same
 * groups whatever order they were read in. A group's key is its oldest episode id; its pattern's id is derived
 * from the key, so running consolidation again updates the same pattern, and returns "unchanged" when nothing
 * about the group changed (idempotent). A consolidated pattern whose group has merged into another is marked
 * as superseded rather than deleted.
 */
import crypto from 'node:crypto';
import type { MemoryItem, Provenance } from './model.js';
import { processTerm } from './rank.js';

export const SIMILARITY_THRESHOLD = 0.4;
export const MIN_GROUP = 2;

/** An error message with the varying parts (numbers, hex, quoted text, paths, line:col) taken out. */
export function errorSignature(error: string): string {
  return error
    .toLowerCase()
    .replace(/(['"`]).*?\1/g, 'Q')
    .replace(/(?:[a-z]:)?(?:[\w.-]*\/)+[\w.-]+/g, 'P')
    .replace(/0x[0-9a-f]+|\b[0-9a-f]{7,}\b/g, 'H')
    .replace(/\d+/g, 'N')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 120);
}

export function keyTerms(ep: MemoryItem): Set<string> {
  const text = [ep.title, ...ep.lessons, ...ep.errors.map(errorSignature), ep.taskType ?? ''].join(' ');
  const out = new Set<string>();
  for (const raw of text.split(/[^\p{L}\p{N}]+/u)) {
    if (raw.length < 3 || /^\d+$/.test(raw)) continue;
    const t = processTerm(raw);
    if (t) out.add(t);
  }
  return out;
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/** Groups of similar episodes (each sorted by id; groups sorted by their first id). */
export function groupEpisodes(episodes: readonly MemoryItem[], threshold = SIMILARITY_THRESHOLD): MemoryItem[][] {
  const eps = [...episodes]
    .filter((e) => e.layer === 'episode')
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const parent = eps.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const terms = eps.map(keyTerms);
  const sigs = eps.map((e) => new Set(e.errors.map(errorSignature).filter((s) => s.length >= 8)));
  const bySig = new Map<string, number>();
  eps.forEach((_, i) => {
    for (const s of sigs[i]!) {
      const first = bySig.get(s);
      if (first === undefined) bySig.set(s, i);
      else union(first, i);
    }
  });
  // O(n^2) term comparison; consolidation is an occasional, explicit operation (10k episodes is ~50M pairs, so
  // it is bounded to the most recent MAX_EPISODES by the caller).
  for (let i = 0; i < eps.length; i++) {
    for (let j = i + 1; j < eps.length; j++) {
      if (find(i) === find(j)) continue;
      if (jaccard(terms[i]!, terms[j]!) >= threshold) union(i, j);
    }
  }
  const groups = new Map<number, MemoryItem[]>();
  eps.forEach((e, i) => {
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(e);
    else groups.set(r, [e]);
  });
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
}

export function patternIdForGroup(key: string): string {
  return `pt-c-${crypto.createHash('sha256').update(`consolidate:${key}`).digest('hex').slice(0, 20)}`;
}

function mostCommon<T extends string>(values: (T | null)[]): T | null {
  const counts = new Map<T, number>();
  for (const v of values) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: T | null = null;
  let bestN = 0;
  for (const [v, n] of [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (n > bestN) {
      best = v;
      bestN = n;
    }
  }
  return best;
}

function distinct(values: string[], max: number): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const v of values) {
    const k = v.trim().toLowerCase();
    if (!k || seen.has(k)) continue;
    seen.add(k);
    out.push(v.trim());
    if (out.length >= max) break;
  }
  return out;
}

/** The pattern a group yields (provenance filled in by the caller). */
export function patternForGroup(group: MemoryItem[], provenance: Provenance): MemoryItem {
  const key = group[0]!.id;
  const failures = group.filter((e) => e.outcome === 'failure').length;
  const successes = group.filter((e) => e.outcome === 'success').length;
  const anti = failures > successes;
  const consistency = Math.max(failures, successes) / group.length;
  const confidence = Math.round(consistency * (1 - 1 / (group.length + 1)) * 100) / 100;
  const common = [...group.map(keyTerms).reduce((acc, s) => new Set([...acc].filter((x) => s.has(x))))]
    .sort()
    .slice(0, 8);
  const taskType = mostCommon(group.map((e) => e.taskType));
  const phase = mostCommon(group.map((e) => e.phase));
  const errors = distinct(
    group.flatMap((e) => e.errors),
    5,
  );
  const when = [
    taskType ? `task type ${taskType}` : '',
    phase ? `phase ${phase}` : '',
    errors.length ? `errors like: ${errorSignature(errors[0]!)}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return {
    id: patternIdForGroup(key),
    layer: 'pattern',
    title: `${anti ? 'Anti-pattern' : 'Pattern'}: ${group[0]!.title}`.slice(0, 200),
    body: [
      `Seen in ${group.length} episodes: ${successes} succeeded, ${failures} failed, ${group.length - successes - failures} partial.`,
      common.length ? `Shared terms: ${common.join(', ')}.` : '',
      anti
        ? 'Most attempts failed: avoid repeating them as they were.'
        : 'Most attempts succeeded: this approach tends to work.',
    ]
      .filter(Boolean)
      .join(' '),
    tags: [...new Set(['consolidated', ...group.flatMap((e) => e.tags)])].sort().slice(0, 12),
    phase,
    taskType,
    provenance,
    outcome: null,
    errors,
    lessons: distinct(
      group.flatMap((e) => e.lessons),
      10,
    ),
    files: distinct(
      group.flatMap((e) => e.files),
      20,
    ),
    when: when || null,
    antiPattern: anti,
    confidence,
    steps: [],
    sources: group.map((e) => e.id),
    groupKey: key,
    flags: [...new Set(group.flatMap((e) => e.flags))].sort(),
  };
}

export interface ConsolidationPlan {
  groups: number;
  created: MemoryItem[];
  updated: MemoryItem[];
  unchanged: string[];
  superseded: MemoryItem[];
}

/** Compare ignoring provenance (its time changes on every run). */
function sameContent(a: MemoryItem, b: MemoryItem): boolean {
  return stable({ ...a, provenance: null }) === stable({ ...b, provenance: null });
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * What consolidation would write, given every episode and the existing patterns. Deterministic: the same
 * inputs give the same plan; applying the plan and planning again gives no changes.
 */
export function planConsolidation(
  items: readonly MemoryItem[],
  provenance: Provenance,
  opts: { minGroup?: number; finalize?: (p: MemoryItem) => MemoryItem } = {},
): ConsolidationPlan {
  const minGroup = opts.minGroup ?? MIN_GROUP;
  const finalize = opts.finalize ?? ((p: MemoryItem) => p);
  const episodes = items.filter((i) => i.layer === 'episode');
  const existing = new Map(items.filter((i) => i.layer === 'pattern' && i.groupKey !== null).map((p) => [p.id, p]));
  const groups = groupEpisodes(episodes).filter((g) => g.length >= minGroup);
  const plan: ConsolidationPlan = { groups: groups.length, created: [], updated: [], unchanged: [], superseded: [] };
  const live = new Set<string>();
  const episodeGroup = new Map<string, string>();
  for (const g of groups) {
    const pattern = finalize(patternForGroup(g, provenance));
    live.add(pattern.id);
    for (const e of g) episodeGroup.set(e.id, pattern.id);
    const old = existing.get(pattern.id);
    if (!old) plan.created.push(pattern);
    else if (sameContent(old, pattern)) plan.unchanged.push(pattern.id);
    else plan.updated.push(pattern);
  }
  for (const old of [...existing.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (live.has(old.id) || old.flags.includes('superseded')) continue;
    const into = old.sources.map((s) => episodeGroup.get(s)).find((x) => x !== undefined);
    plan.superseded.push(
      finalize({
        ...old,
        provenance,
        flags: [...new Set([...old.flags, 'superseded'])].sort(),
        body: `${old.body}${into ? ` Superseded by ${into}.` : ' Its group no longer holds.'}`.slice(0, 8000),
      }),
    );
  }
  return plan;
}
