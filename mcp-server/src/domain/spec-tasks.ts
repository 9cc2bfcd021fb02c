/**
 * Spec -> seed tasks, deterministically: the same spec always gives the same tasks (ids t1..tN in document
 * order), and so the same checklist (domain/checklist.ts). Pure: text in, drafts out; malformed input throws a
 * SpecError that says where and how to fix it. Every requirement the spec states becomes a task; its acceptance
 * criteria stay with it. The readers:
 *
 * - Markdown (also .txt, and an issue body): spec/markdown.ts, over a CommonMark + GFM syntax tree.
 * - JSON or YAML PRD, OpenAPI / Swagger, `gh issue view --json` output: spec/structured.ts.
 * A file that starts with "[" or "{" is read as JSON only if it parses as JSON (a Markdown spec may start with
 * a link or a badge). Phase and priority come from words in the headings and items (spec/words.ts), default
 * DEVELOPMENT / medium.
 */
import { SpecError } from '../errors.js';
import type { Draft } from './spec/draft.js';
import { readMarkdown } from './spec/markdown.js';
import { fromOpenApi, fromPrd, isOpenApi, issueOf } from './spec/structured.js';
import { MAX_DEPENDENCIES, TITLE_CHARS, DESCRIPTION_CHARS, clip } from './spec/words.js';
import { parseYaml } from './yaml.js';
import { findCycle, type TaskDraft } from './tasks.js';

export type SpecKind = 'markdown' | 'json' | 'yaml' | 'openapi' | 'text' | 'issue';

export interface SpecTasks {
  kind: SpecKind;
  /** What the spec calls itself: its first heading, `title`/`name`, or an OpenAPI `info.title`. */
  title: string | null;
  tasks: TaskDraft[];
  notes: string[];
  /** Top-level Markdown headings (0 for structured specs), for the tier. */
  sections: number;
}

export const MAX_SPEC_TASKS = 300;

export function detectSpecKind(text: string, extension: string): SpecKind {
  const trimmed = text.trimStart();
  if (isJsonText(text, extension)) {
    return /"(openapi|swagger)"\s*:/.test(trimmed.slice(0, 4096)) ? 'openapi' : 'json';
  }
  if (extension === '.yaml' || extension === '.yml') return /^(openapi|swagger)\s*:/m.test(text) ? 'openapi' : 'yaml';
  if (/^(openapi|swagger)\s*:/m.test(trimmed.slice(0, 200))) return 'openapi';
  return /^\s*(?:#{1,6}\s|[-*+]\s|\d{1,9}[.)]\s|\|)/m.test(text) ? 'markdown' : 'text';
}

/**
 * The last spec read, kept because loki_start reads the same spec for its title, its seed and its tier, and a
 * large Markdown spec takes seconds to parse. Callers get a copy, so none can change what another reads.
 */
let last: { text: string; extension: string; result: SpecTasks } | undefined;

export function tasksFromSpec(text: string, extension: string): SpecTasks {
  if (last?.text !== text || last.extension !== extension)
    last = { text, extension, result: readSpec(text, extension) };
  return structuredClone(last.result);
}

function readSpec(text: string, extension: string): SpecTasks {
  let sections = 0;
  let kind = detectSpecKind(text, extension);
  let notes: string[] = [];
  let title: string | null = null;
  let drafts: Draft[];
  if (kind === 'markdown' || kind === 'text') {
    const md = readMarkdown(text);
    kind = md.structured ? 'markdown' : 'text';
    ({ title, drafts, notes, sections } = md);
  } else {
    const doc = parseStructured(text, extension);
    const issue = kind === 'json' ? issueOf(doc) : undefined;
    if (issue) {
      kind = 'issue';
      const md = readMarkdown(issue.body, issue.title ?? undefined);
      title = issue.title ?? md.title;
      notes = md.notes;
      drafts = md.drafts;
      if (drafts.length === 0 && issue.title)
        drafts = [
          {
            title: clip(issue.title, TITLE_CHARS),
            description: clip(issue.body.trim(), DESCRIPTION_CHARS),
            phase: 'DEVELOPMENT',
            source: { kind: 'spec', section: null },
          },
        ];
    } else if (kind === 'openapi' || isOpenApi(doc)) {
      kind = 'openapi';
      ({ title, drafts } = fromOpenApi(doc));
    } else ({ title, drafts } = fromPrd(doc));
  }
  if (drafts.length === 0) drafts = [wholeTextTask(text)];
  if (drafts.length > MAX_SPEC_TASKS) {
    notes.push(
      `the spec gives ${drafts.length} tasks; the first ${MAX_SPEC_TASKS} were queued, add the rest with loki_task_add`,
    );
    drafts = drafts.slice(0, MAX_SPEC_TASKS);
  }
  return { kind, title, tasks: numbered(drafts), notes, sections };
}

/** The spec's own title, or null when it has none (or does not parse: the start refuses it then anyway). */
export function titleOfSpec(text: string, extension: string): string | null {
  try {
    return tasksFromSpec(text, extension).title;
  } catch {
    return null;
  }
}

// ---- JSON / YAML ------------------------------------------------------------------------------------------

/** A `.json` file, or text that starts like JSON and parses as JSON (not Markdown that opens with a link). */
function isJsonText(text: string, extension: string): boolean {
  if (extension === '.json') return true;
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function parseStructured(text: string, extension: string): unknown {
  if (isJsonText(text, extension)) {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new SpecError(`the spec is not valid JSON (${(err as Error).message}); fix it, or give it as Markdown`);
    }
  }
  try {
    return parseYaml(text);
  } catch (err) {
    const e = err as Error & { linePos?: { line: number; col: number }[] };
    const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new SpecError(
      `the spec is not valid YAML${at} (${e.message.split('\n')[0]}); fix it, or give it as Markdown`,
    );
  }
}

/**
 * Give the drafts their ids in document order; resolve dependencies given by the spec's own ids (unknown ones and
 * self-references dropped, a cycle refused) and the criteria tasks' dependencies on their section.
 */
function numbered(drafts: Draft[]): TaskDraft[] {
  const byRef = new Map<string, number>();
  drafts.forEach((d, i) => {
    if (d.ref !== undefined && !byRef.has(d.ref)) byRef.set(d.ref, i);
  });
  const out: TaskDraft[] = drafts.map(({ dependsOnSection: _s, ref: _r, after, ...d }, i) => {
    const task: TaskDraft = { ...d, id: `t${i + 1}` };
    if (after !== undefined) {
      const deps = after
        .map((ref) => byRef.get(ref))
        .filter((n): n is number => n !== undefined && n !== i && n < drafts.length)
        .map((n) => `t${n + 1}`);
      // At most MAX_DEPENDENCIES distinct ones: a task record holds no more.
      task.dependencies = [...new Set([...(d.dependencies ?? []), ...deps])].slice(0, MAX_DEPENDENCIES);
    }
    return task;
  });
  drafts.forEach((d, i) => {
    if (!d.dependsOnSection) return;
    const section = d.source?.section ?? null;
    const inSection = (o: TaskDraft) =>
      section === null || o.source?.section === section || o.source?.section?.startsWith(`${section} > `);
    out[i]!.dependencies = out
      .slice(0, i)
      .filter(inSection)
      .map((o) => o.id!)
      .slice(0, MAX_DEPENDENCIES);
  });
  checkSpecCycle(out, drafts);
  return out;
}

/** A dependency cycle among the spec's requirements would be refused when queued: report it now, by the spec's ids. */
function checkSpecCycle(tasks: readonly TaskDraft[], drafts: readonly Draft[]): void {
  const index = (id: string) => Number(id.slice(1)) - 1;
  const cycle = findCycle(
    tasks.map((t) => t.id!),
    (id) => tasks[index(id)]?.dependencies ?? [],
  );
  if (!cycle) return;
  const names = cycle.map((id) => drafts[index(id)]?.ref ?? id);
  throw new SpecError(`the spec's dependencies form a cycle: ${names.join(' -> ')}; remove one of these dependencies`);
}

function wholeTextTask(text: string): TaskDraft {
  const title = clip(firstLine(text), TITLE_CHARS);
  const description = text.trim() === title ? '' : clip(text.trim(), DESCRIPTION_CHARS);
  return { title, description, phase: 'DEVELOPMENT', source: { kind: 'spec', section: null } };
}

/** The first line with a word in it, without its Markdown marks (heading, quote, list item, checkbox). */
function firstLine(text: string): string {
  return (
    text
      .split(/\r?\n/)
      .map((l) =>
        l
          .replace(/^\s*(?:#+|>+)\s*/, '')
          .replace(/^(?:[-*+]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s*)?/, '')
          .trim(),
      )
      .find((l) => /[\p{L}\p{N}]/u.test(l) && !/^(`{3,}|~{3,})/.test(l)) ?? 'the spec'
  );
}
