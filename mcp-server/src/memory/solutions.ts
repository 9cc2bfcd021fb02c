/**
 * Cross-project solutions: `$LOKI_HOME/solutions/<category>/<slug>.md` (LOKI_HOME defaults to ~/.loki), Markdown
 * with YAML frontmatter (title, tags, symptoms, root_cause, prevention, created, updated, project) read and
 * written with gray-matter over the `yaml` package, validated with zod both ways.
 *
 * Safety: category and slug are lowercase kebab-case ASCII (which also passes checkId), resolved through SafeDir
 * under the solutions folder, so nothing can be written outside it; writes are atomic. gray-matter's JavaScript
 * frontmatter engine (`---js`, which evals) is replaced by one that refuses. A file whose frontmatter is bad is
 * skipped and reported, never fatal. Secrets are scrubbed before anything is written.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type MiniSearchType from 'minisearch';
import { z } from 'zod';
import { parseFrontmatter, stringifyFrontmatter, type FrontmatterFile } from '../config/frontmatter.js';
import { scrubSecrets } from '../domain/secrets.js';
import { makeHomePrivate } from '../home.js';
import { readFileIfExists, writeFileAtomic } from '../store/fsx.js';
import { SafeDir, checkId, printable } from '../store/paths.js';

import { LIMITS, TAG } from './model.js';
import { FIELD_BOOST, SEARCH_FIELDS, processTerm, type SearchDoc } from './rank.js';
import { PathError, UsageError } from '../errors.js';

export const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
export const MAX_SLUG = 64;
const MAX_SOLUTION_FILE = 256 * 1024;

const isoTime = z.string().min(1).max(64);
export const frontmatterSchema = z
  .object({
    title: z.string().min(1).max(LIMITS.title),
    tags: z.array(z.string().max(LIMITS.tag).regex(TAG)).max(LIMITS.tags),
    symptoms: z.array(z.string().min(1).max(LIMITS.item)).max(LIMITS.list),
    root_cause: z.string().max(4000),
    prevention: z.string().max(4000),
    created: isoTime,
    updated: isoTime,
    project: z.string().max(200).nullable(),
  })
  .strict();
export type SolutionFrontmatter = z.infer<typeof frontmatterSchema>;

export interface Solution extends SolutionFrontmatter {
  category: string;
  slug: string;
  /** `sol:<category>/<slug>`: the id memory search and get use. */
  id: string;
  body: string;
}

export function checkSlug(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length > MAX_SLUG || !SLUG.test(value)) {
    throw new UsageError(
      `${what} must be lowercase kebab-case ASCII (letters, digits, single "-" between words; at most ${MAX_SLUG} characters), e.g. "build-errors"${typeof value === 'string' ? `; got "${printable(value)}"` : ''}`,
    );
  }
  return checkId(value, what);
}

export function slugify(title: string): string {
  const s = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_SLUG)
    .replace(/-+$/, '');
  return s || 'solution';
}

export function parseSolution(
  text: string,
): { value: { data: SolutionFrontmatter; body: string } } | { problem: string } {
  let file: FrontmatterFile;
  try {
    file = parseFrontmatter(text);
  } catch (err) {
    return { problem: `frontmatter does not parse: ${(err as Error).message.split('\n')[0]}` };
  }
  if (!file.matter || file.matter.trim() === '')
    return { problem: 'no YAML frontmatter (expected a block between --- lines at the top)' };
  const parsed = frontmatterSchema.safeParse(file.data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `frontmatter ${issue?.path.join('.') || ''}: ${issue?.message ?? 'invalid'}` };
  }
  return { value: { data: parsed.data, body: file.content.replace(/^\n+/, '') } };
}

export function formatSolution(data: SolutionFrontmatter, body: string): string {
  const checked = frontmatterSchema.parse(data);
  const text = stringifyFrontmatter(body.endsWith('\n') || body === '' ? body : `${body}\n`, checked);
  return text.endsWith('\n') ? text : `${text}\n`;
}

// ---- the folder ---------------------------------------------------------------------------------------

export function solutionsRoot(lokiHome: string, create: boolean): SafeDir | undefined {
  if (create) makeHomePrivate(lokiHome);
  let home: SafeDir;
  try {
    home = SafeDir.open(lokiHome);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return home.child('solutions', create);
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return undefined;
    throw err;
  }
}

export interface LearnInput {
  category: string;
  slug?: string | undefined;
  title: string;
  tags?: string[] | undefined;
  symptoms?: string[] | undefined;
  rootCause?: string | undefined;
  prevention?: string | undefined;
  body?: string | undefined;
}

export interface LearnResult {
  id: string;
  file: string;
  created: boolean;
  redacted: number;
}

/** Write (or update) one solution. Category and slug are validated before anything is created. */
export function writeSolution(
  lokiHome: string,
  input: LearnInput,
  projectName: string | null,
  now = new Date(),
): LearnResult {
  const category = checkSlug(input.category, 'category');
  const slug = checkSlug(input.slug ?? slugify(input.title), 'slug');
  const { value: clean, report } = scrubSecrets({
    title: input.title,
    tags: input.tags ?? [],
    symptoms: input.symptoms ?? [],
    root_cause: input.rootCause ?? '',
    prevention: input.prevention ?? '',
    body: input.body ?? '',
    project: projectName,
  });
  const tags = normaliseTags(clean.tags);
  const root = solutionsRoot(lokiHome, true)!;
  const dir = root.child(category, true);
  const name = `${slug}.md`;
  const existing = readFileIfExists(dir, name, MAX_SOLUTION_FILE);
  const previous = existing ? parseSolution(existing.toString('utf8')) : undefined;
  const stamp = now.toISOString();
  const data: SolutionFrontmatter = {
    title: clean.title,
    tags,
    symptoms: clean.symptoms,
    root_cause: clean.root_cause,
    prevention: clean.prevention,
    created: previous && 'value' in previous ? previous.value.data.created : stamp,
    updated: stamp,
    project: clean.project,
  };
  const parsed = frontmatterSchema.safeParse(data);
  if (!parsed.success)
    throw new UsageError(`solution ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  const body = clean.body.trim() === '' ? `# ${clean.title}\n` : clean.body;
  writeFileAtomic(dir, name, formatSolution(parsed.data, body), { mode: 0o600 });
  invalidateSolutions(lokiHome);
  return {
    id: `sol:${category}/${slug}`,
    file: path.join(dir.root, name),
    created: !existing,
    redacted: report.redacted,
  };
}

/** Normalise free-form tags to the TAG pattern (lowercase, kebab); drop what cannot be (e.g. a redaction). */
export function normaliseTags(tags: string[]): string[] {
  const out: string[] = [];
  for (const t of tags) {
    if (t.includes('[REDACTED')) continue;
    const n = t
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .replace(/-+$/, '')
      .slice(0, LIMITS.tag);
    if (n && TAG.test(n) && !out.includes(n)) out.push(n);
  }
  return out.slice(0, LIMITS.tags);
}

export interface SolutionScan {
  solutions: Solution[];
  problems: string[];
}

/** Read every solution file; bad ones are skipped and reported. */
export function readAllSolutions(lokiHome: string): SolutionScan {
  const root = solutionsRoot(lokiHome, false);
  const out: SolutionScan = { solutions: [], problems: [] };
  if (!root) return out;
  for (const category of fs.readdirSync(root.root).sort()) {
    if (!SLUG.test(category) || category.length > MAX_SLUG) continue;
    let dir: SafeDir;
    try {
      dir = root.child(category, false);
    } catch (err) {
      out.problems.push(`solutions/${printable(category)}: ${(err as Error).message}`);
      continue;
    }
    for (const name of fs.readdirSync(dir.root).sort()) {
      if (!name.endsWith('.md')) continue;
      const slug = name.slice(0, -3);
      const rel = `solutions/${category}/${name}`;
      if (!SLUG.test(slug) || slug.length > MAX_SLUG) {
        out.problems.push(`${printable(rel)}: the file name is not a lowercase kebab-case slug; skipped`);
        continue;
      }
      let text: string;
      try {
        text = readFileIfExists(dir, name, MAX_SOLUTION_FILE)?.toString('utf8') ?? '';
      } catch (err) {
        out.problems.push(`${rel}: ${(err as Error).message}; skipped`);
        continue;
      }
      const parsed = parseSolution(text);
      if ('problem' in parsed) {
        out.problems.push(`${rel}: ${parsed.problem}; skipped`);
        continue;
      }
      out.solutions.push({
        ...parsed.value.data,
        category,
        slug,
        id: `sol:${category}/${slug}`,
        body: parsed.value.body,
      });
    }
  }
  return out;
}

export function parseSolutionId(id: string): { category: string; slug: string } | undefined {
  const m = /^sol:([a-z0-9-]{1,64})\/([a-z0-9-]{1,64})$/.exec(id);
  return m && SLUG.test(m[1]!) && SLUG.test(m[2]!) ? { category: m[1]!, slug: m[2]! } : undefined;
}

// ---- the warm global index ------------------------------------------------------------------------------

/*
 * Solutions are few and live in files, so they are indexed in memory with minisearch (BM25+), whose idf stays
 * positive in a corpus of one or two documents; FTS5's bm25 (used for the project's memory) gives ~0 to every
 * word of a corpus that small, which would rank every solution below every memory item. minisearch is loaded
 * on first use, so starting a server does not pay for it.
 */
declare const require: ((id: string) => unknown) | undefined;
type MiniSearchCtor = typeof MiniSearchType;
let MiniSearchClass: MiniSearchCtor | undefined;

function newTextIndex(): MiniSearchType<SearchDoc> {
  if (!MiniSearchClass)
    MiniSearchClass = (
      typeof require === 'function' ? require('minisearch') : createRequire(import.meta.url)('minisearch')
    ) as MiniSearchCtor;
  return new MiniSearchClass<SearchDoc>({ fields: [...SEARCH_FIELDS], storeFields: [], processTerm });
}

/** BM25+ with the field boosts of rank.ts, prefix matching and light fuzziness for longer terms. */
function textSearch(
  index: MiniSearchType<SearchDoc>,
  query: string,
  filter?: (id: string) => boolean,
): { id: string; score: number }[] {
  return index
    .search(query, {
      boost: FIELD_BOOST,
      prefix: (term) => term.length >= 4,
      fuzzy: (term) => (term.length >= 6 ? 0.15 : false),
      maxFuzzy: 2,
      ...(filter ? { filter: (r) => filter(r.id as string) } : {}),
    })
    .map((r) => ({ id: r.id as string, score: r.score }));
}

function solutionDoc(s: Solution): SearchDoc {
  return {
    id: s.id,
    title: s.title,
    tags: s.tags.join(' '),
    summary: [...s.symptoms, s.root_cause].join('\n'),
    body: [s.prevention, s.body, s.category].join('\n'),
  };
}

const FULL_RESCAN_MS = 1000;

/**
 * The solutions of one LOKI_HOME, indexed. Another project's server may add a solution at any time, and people
 * may edit the files: the folder's directory stamps (a new or renamed file changes them) are checked on every
 * use, and every file's size and mtime at most once a second.
 */
export class SolutionIndex {
  private text: MiniSearchType<SearchDoc> | undefined;
  private byId = new Map<string, Solution>();
  private dirStamp = '';
  private fileStamp = '';
  private lastFullCheck = 0;
  problems: string[] = [];

  constructor(private readonly lokiHome: string) {}

  invalidate(): void {
    this.text = undefined;
  }

  private stamps(full: boolean): { dir: string; files: string } {
    const root = path.join(this.lokiHome, 'solutions');
    const parts: string[] = [];
    const files: string[] = [];
    let names: string[];
    try {
      const st = fs.lstatSync(root);
      parts.push(`${st.ino}:${st.mtimeMs}`);
      names = fs.readdirSync(root).sort();
    } catch {
      return { dir: 'none', files: '' };
    }
    for (const c of names) {
      try {
        const st = fs.lstatSync(path.join(root, c));
        parts.push(`${c}:${st.ino}:${st.mtimeMs}`);
        if (full && st.isDirectory()) {
          for (const f of fs.readdirSync(path.join(root, c)).sort()) {
            const fst = fs.lstatSync(path.join(root, c, f));
            files.push(`${c}/${f}:${fst.ino}:${fst.size}:${fst.mtimeMs}`);
          }
        }
      } catch {
        parts.push(`${c}:gone`);
      }
    }
    return { dir: parts.join('|'), files: files.join('|') };
  }

  refresh(now = Date.now()): void {
    const full = now - this.lastFullCheck >= FULL_RESCAN_MS;
    const s = this.stamps(full);
    if (full) this.lastFullCheck = now;
    const changed = !this.text || s.dir !== this.dirStamp || (full && s.files !== this.fileStamp);
    if (!changed) return;
    const scan = readAllSolutions(this.lokiHome);
    const text = newTextIndex();
    text.addAll(scan.solutions.map(solutionDoc));
    this.text = text;
    this.byId = new Map(scan.solutions.map((x) => [x.id, x]));
    this.problems = scan.problems;
    this.dirStamp = s.dir;
    this.fileStamp = full ? s.files : this.stamps(true).files;
  }

  search(query: string, filter?: (s: Solution) => boolean): { solution: Solution; score: number }[] {
    this.refresh();
    return textSearch(this.text!, query, filter ? (id) => filter(this.byId.get(id)!) : undefined).map((h) => ({
      solution: this.byId.get(h.id)!,
      score: h.score,
    }));
  }

  get(id: string): Solution | undefined {
    this.refresh();
    return this.byId.get(id);
  }

  all(): Solution[] {
    this.refresh();
    return [...this.byId.values()];
  }
}

const solutionIndexes = new Map<string, SolutionIndex>();

export function solutionIndex(lokiHome: string): SolutionIndex {
  let idx = solutionIndexes.get(lokiHome);
  if (!idx) {
    idx = new SolutionIndex(lokiHome);
    solutionIndexes.set(lokiHome, idx);
  }
  return idx;
}

function invalidateSolutions(lokiHome: string): void {
  solutionIndexes.get(lokiHome)?.invalidate();
}
