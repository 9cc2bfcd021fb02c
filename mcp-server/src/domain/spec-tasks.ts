/**
 * Spec -> seed tasks, deterministically: the same spec always gives the same tasks (ids t1..tN in document
 * order). Pure: text in, drafts out; malformed input throws a SpecError that says where and how to fix it.
 *
 * - Markdown (also .txt): each top-level list or checkbox item is a task, its nested items are the task's
 *   acceptance criteria, the heading path is its source. Checked items (`- [x]`) are already done and skipped.
 *   Sections such as "Non-goals" or "Out of scope" are skipped. An "Acceptance criteria" / "Definition of
 *   done" section gives its items to the task of its parent section (or, when that section has several tasks or
 *   subsections, to a criteria task that follows all of them and depends on them). A section with text but no
 *   items becomes one task. No headings and no items: the whole text is one task. A file that starts with "[" or
 *   "{" is read as JSON only if it parses as JSON (a Markdown spec may start with a link or a badge).
 * - JSON (or YAML) PRD: arrays under keys like `features`, `userStories`, `requirements`, `tasks`, `epics`
 *   (nested ones too), or a top-level array; each element a task (title/name/summary, description, acceptance
 *   criteria, priority, dependencies between elements by their `id`; a dependency cycle is a SpecError).
 * - OpenAPI / Swagger (JSON or YAML): one task per operation, its responses as acceptance criteria
 *   (`x-` extension keys under `paths` are ignored).
 * Phase and priority come from words in the headings and items (tables below), default DEVELOPMENT / medium.
 */
import { parseYaml } from './yaml.js';
import type { Phase } from './phases.js';
import { findCycle, type Priority, type TaskDraft } from './tasks.js';

export type SpecKind = 'markdown' | 'json' | 'yaml' | 'openapi' | 'text';

export interface SpecTasks {
  kind: SpecKind;
  tasks: TaskDraft[];
  notes: string[];
}

import { SpecError } from '../errors.js';

export const MAX_SPEC_TASKS = 300;
const TITLE_CHARS = 200;
const DESCRIPTION_CHARS = 8000;
const ACCEPTANCE_CHARS = 1000;
const MAX_ACCEPTANCE = 50;
const MAX_DEPENDENCIES = 100;

/** Sections that describe what not to build, or context: no tasks come from them (the whole heading must match). */
const SKIPPED_SECTION =
  /^(?:[\d.]+\s*)?(?:non[- ]?goals?|out of scope|not in scope|won'?t have|future (?:work|ideas|scope)|later|glossary|references?|appendix|open questions|questions|background|context|overview|introduction|summary|motivation|problem statement|table of contents|contents|changelog|notes|assumptions|risks)\s*:?$/i;
const CRITERIA_SECTION =
  /^(?:[\d.]+\s*)?(?:acceptance criteria|definition of done|success criteria|done when|exit criteria)\s*:?$/i;

/** First match wins, innermost heading first, then the item itself. */
const PHASE_WORDS: readonly [RegExp, Phase][] = [
  [/\b(tests?|testing|qa|quality|verification|e2e)\b/i, 'QA'],
  [/\b(deploy(ment)?|release|launch|rollout|hosting|production)\b/i, 'DEPLOYMENT'],
  [/\b(infrastructure|infra|ci|cd|pipeline|environments?|setup|tooling|scaffold(ing)?)\b/i, 'INFRASTRUCTURE'],
  [/\b(architecture|design|data model|schema|interfaces?)\b/i, 'ARCHITECTURE'],
  [/\b(research|discovery|spike|investigate)\b/i, 'DISCOVERY'],
];

const PRIORITY_WORDS: readonly [RegExp, Priority][] = [
  [/\b(p0|critical|blocker|urgent)\b/i, 'critical'],
  [/\b(p1|high|must( have)?|mvp|core)\b/i, 'high'],
  [/\b(p3|low|could( have)?|nice[- ]to[- ]have|optional|stretch)\b/i, 'low'],
  [/\b(p2|medium|should( have)?|normal)\b/i, 'medium'],
];

export function detectSpecKind(text: string, extension: string): SpecKind {
  const trimmed = text.trimStart();
  if (isJsonText(text, extension)) {
    return /"(openapi|swagger)"\s*:/.test(trimmed.slice(0, 4096)) ? 'openapi' : 'json';
  }
  if (extension === '.yaml' || extension === '.yml') return /^(openapi|swagger)\s*:/m.test(text) ? 'openapi' : 'yaml';
  if (/^(openapi|swagger)\s*:/m.test(trimmed.slice(0, 200))) return 'openapi';
  return hasMarkdownStructure(text) ? 'markdown' : 'text';
}

export function tasksFromSpec(text: string, extension: string): SpecTasks {
  const kind = detectSpecKind(text, extension);
  const notes: string[] = [];
  let drafts: Draft[];
  switch (kind) {
    case 'openapi':
      drafts = fromOpenApi(parseStructured(text, extension));
      break;
    case 'json':
    case 'yaml':
      drafts = fromPrdObject(parseStructured(text, extension), text);
      break;
    case 'markdown':
      drafts = fromMarkdown(text, notes);
      break;
    case 'text':
      drafts = [wholeTextTask(text)];
      break;
  }
  if (drafts.length === 0) drafts = [wholeTextTask(text)];
  if (drafts.length > MAX_SPEC_TASKS) {
    notes.push(
      `the spec gives ${drafts.length} tasks; the first ${MAX_SPEC_TASKS} were queued, add the rest with loki_task_add`,
    );
    drafts = drafts.slice(0, MAX_SPEC_TASKS);
    // Dependencies on tasks that were not queued would make the whole seed fail.
    const kept = new Set(drafts.map((_, i) => `t${i + 1}`));
    for (const d of drafts) if (d.dependencies) d.dependencies = d.dependencies.filter((id) => kept.has(id));
  }
  return { kind, tasks: numbered(drafts), notes };
}

// ---- Markdown -----------------------------------------------------------------------------------------------

/** A draft plus, for criteria tasks, a request to depend on the tasks of their section (resolved when numbered). */
interface Draft extends TaskDraft {
  dependsOnSection?: boolean;
}

interface Section {
  level: number;
  title: string;
  path: string[];
  skipped: boolean;
  criteria: boolean;
  body: string[];
  tasks: Draft[];
  parent: Section | undefined;
}

const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/;
const LIST_ITEM = /^(\s*)(?:[-*+]|\d{1,3}[.)])\s+(?:\[( |x|X)\]\s+)?(.*)$/;
const FENCE = /^\s*(```|~~~)/;

function hasMarkdownStructure(text: string): boolean {
  return text.split(/\r?\n/).some((l) => HEADING.test(l) || LIST_ITEM.test(l));
}

function fromMarkdown(text: string, notes: string[]): Draft[] {
  const root: Section = {
    level: 0,
    title: '',
    path: [],
    skipped: false,
    criteria: false,
    body: [],
    tasks: [],
    parent: undefined,
  };
  const sections: Section[] = [root];
  let current = root;
  let inFence = false;
  let item: { draft: Draft; indent: number } | undefined;
  let skippingDone: number | undefined; // indent of a checked item whose children are skipped too
  let checkedCount = 0;

  for (const raw of text.split(/\r?\n/)) {
    if (FENCE.test(raw)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) continue;
    const heading = HEADING.exec(raw);
    if (heading) {
      const level = heading[1]!.length;
      const title = cleanInline(heading[2]!);
      let parent = current;
      while (parent.level >= level && parent.parent) parent = parent.parent;
      const section: Section = {
        level,
        title,
        path: [...parent.path, title],
        skipped: parent.skipped || SKIPPED_SECTION.test(title),
        criteria: CRITERIA_SECTION.test(title),
        body: [],
        tasks: [],
        parent,
      };
      // A document title (the only H1, at the top) is not a section of work: keep it out of the path.
      if (level === 1 && parent === root && sections.length === 1) section.path = [];
      sections.push(section);
      current = section;
      item = undefined;
      skippingDone = undefined;
      continue;
    }
    const li = LIST_ITEM.exec(raw);
    if (li) {
      const indent = li[1]!.replace(/\t/g, '    ').length;
      const checked = li[2] === 'x' || li[2] === 'X';
      const body = cleanInline(li[3]!);
      if (skippingDone !== undefined && indent > skippingDone) continue;
      skippingDone = undefined;
      if (current.skipped || body === '') continue;
      if (item && indent > item.indent) {
        const acceptance = (item.draft.acceptance ??= []);
        if (acceptance.length < MAX_ACCEPTANCE) acceptance.push(clip(body, ACCEPTANCE_CHARS));
        continue;
      }
      if (checked) {
        checkedCount++;
        skippingDone = indent;
        item = undefined;
        continue;
      }
      const draft = draftFromLine(body, current);
      current.tasks.push(draft);
      item = { draft, indent };
      continue;
    }
    if (raw.trim() === '') continue;
    if (item && /^\s{2,}\S/.test(raw)) {
      item.draft.description = clip(
        `${item.draft.description ?? ''}${item.draft.description ? ' ' : ''}${cleanInline(raw)}`,
        DESCRIPTION_CHARS,
      );
      continue;
    }
    item = undefined;
    current.body.push(raw.trim());
  }
  if (checkedCount > 0) notes.push(`${checkedCount} checked item(s) ("- [x]") are already done and were not queued`);

  const ordered: Draft[] = [];
  // The criteria task of a section with subsections waits until the last of them, so it follows (and depends on)
  // every task of the section. Sections come in document order, so the waiting ones form a stack.
  const waiting: { section: Section; task: Draft }[] = [];
  const release = (next?: Section) => {
    while (waiting.length > 0 && !(next && within(next, waiting[waiting.length - 1]!.section)))
      ordered.push(waiting.pop()!.task);
  };
  for (const s of sections) {
    release(s);
    if (s.skipped || s === root) {
      if (s === root) ordered.push(...s.tasks);
      continue;
    }
    if (s.criteria) continue; // handled with their parent below
    const criteria = s.path.length === 0 ? [] : sections.filter((c) => c.parent === s && c.criteria && !c.skipped);
    const criteriaItems = criteria.flatMap((c) => [
      ...c.tasks.map((t) => t.title),
      ...c.tasks.flatMap((t) => t.acceptance ?? []),
    ]);
    if (s.tasks.length === 0 && (s.body.length > 0 || criteriaItems.length > 0) && !hasChildSections(sections, s)) {
      s.tasks.push({
        title: clip(s.title, TITLE_CHARS),
        description: clip(s.body.join(' '), DESCRIPTION_CHARS),
        phase: phaseFor(s, s.title),
        priority: priorityFor(s, ''),
        source: { kind: 'spec', section: sectionLabel(s) },
      });
    }
    if (criteriaItems.length > 0) {
      if (sections.some((c) => c.parent === s && !c.criteria && !c.skipped))
        waiting.push({ section: s, task: criteriaTask(s, criteriaItems) });
      else if (s.tasks.length === 1)
        s.tasks[0]!.acceptance = [...(s.tasks[0]!.acceptance ?? []), ...criteriaItems].slice(0, MAX_ACCEPTANCE);
      else if (s.tasks.length > 1) s.tasks.push(criteriaTask(s, criteriaItems));
    }
    ordered.push(...s.tasks);
  }
  release();
  // Criteria for the whole document (under the title, or with no heading above them).
  const topCriteria = sections.filter(
    (c) => c.criteria && !c.skipped && (c.parent === root || c.parent?.path.length === 0),
  );
  const topItems = topCriteria.flatMap((c) => [
    ...c.tasks.map((t) => t.title),
    ...c.tasks.flatMap((t) => t.acceptance ?? []),
  ]);
  if (topItems.length > 0) ordered.push(criteriaTask(topCriteria[0]!.parent ?? root, topItems, 'QA'));
  return ordered;
}

function hasChildSections(sections: Section[], s: Section): boolean {
  return sections.some((c) => c.parent === s && !c.criteria);
}

/** Is `s` the section `ancestor` or one of its subsections? */
function within(s: Section, ancestor: Section): boolean {
  for (let at: Section | undefined = s; at; at = at.parent) if (at === ancestor) return true;
  return false;
}

function criteriaTask(s: Section, items: string[], phase?: Phase): Draft {
  const name = s.title || 'the spec';
  return {
    title: clip(`Meet the acceptance criteria of ${name}`, TITLE_CHARS),
    description: `Check every acceptance criterion listed for ${name} and fix what does not hold.`,
    acceptance: items.slice(0, MAX_ACCEPTANCE).map((i) => clip(i, ACCEPTANCE_CHARS)),
    phase: phase ?? phaseFor(s),
    priority: 'high',
    source: { kind: 'spec', section: sectionLabel(s) || null },
    dependsOnSection: true,
  };
}

function draftFromLine(text: string, s: Section): Draft {
  const title = clip(text, TITLE_CHARS);
  return {
    title,
    description: title === text ? '' : clip(text, DESCRIPTION_CHARS),
    phase: phaseFor(s, text),
    priority: priorityFor(s, text),
    source: { kind: 'spec', section: sectionLabel(s) || null },
  };
}

function sectionLabel(s: Section): string {
  return s.path.join(' > ').slice(0, 500);
}

/**
 * The innermost heading that names a phase decides, then the item itself; otherwise DEVELOPMENT. The document
 * title is not a section of work ("# Release planner" does not make every task DEPLOYMENT).
 */
function phaseFor(s: Section | undefined, itemText = ''): Phase {
  for (let at: Section | undefined = s; at && at.path.length > 0; at = at.parent) {
    for (const [re, phase] of PHASE_WORDS) if (re.test(at.title)) return phase;
  }
  return phaseFromWords(itemText);
}

/**
 * A marker on the item itself ("P1", "(high)", "[low]"), else the innermost heading that names a priority (not
 * the document title: "# Core banking" does not make every task high).
 */
function priorityFor(s: Section | undefined, itemText: string): Priority {
  const marker = /(?:^|[\s([*])(p[0-3])(?=[\s)\]*:.,]|$)|[([](critical|high|medium|low)[)\]]/i.exec(itemText);
  if (marker) return priorityWord(marker[1] ?? marker[2]!) ?? 'medium';
  for (let at: Section | undefined = s; at && at.path.length > 0; at = at.parent) {
    const p = priorityWord(at.title);
    if (p) return p;
  }
  return 'medium';
}

function priorityWord(text: string): Priority | undefined {
  for (const [re, p] of PRIORITY_WORDS) if (re.test(text)) return p;
  return undefined;
}

// ---- JSON / YAML PRD --------------------------------------------------------------------------------------

const TASK_ARRAY_KEY =
  /^(features|user_?stories|stories|requirements|functional_?requirements|tasks|epics|items|milestones|deliverables)$/i;

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

interface Found {
  element: unknown;
  pointer: string;
  parentTitle: string | null;
}

function fromPrdObject(doc: unknown, text: string): TaskDraft[] {
  if (doc === null || typeof doc !== 'object')
    throw new SpecError(
      'the spec parsed to a single value, not an object or a list: give a PRD object (e.g. {"title": ..., "features": [...]}) or Markdown',
    );
  const found: Found[] = [];
  if (Array.isArray(doc)) collectArray(doc, '', null, found, 0);
  else collectElements(doc, '', null, found, 0);
  if (found.length === 0) {
    const d = doc as Record<string, unknown>;
    const title = str(d.title) ?? str(d.name) ?? firstLine(text);
    return [
      {
        title: clip(title, TITLE_CHARS),
        description: clip(str(d.description) ?? str(d.summary) ?? '', DESCRIPTION_CHARS),
        source: { kind: 'spec', section: null },
      },
    ];
  }
  const idToIndex = new Map<string, number>();
  found.forEach((f, i) => {
    const id = f.element && typeof f.element === 'object' ? str((f.element as Record<string, unknown>).id) : undefined;
    if (id !== undefined && !idToIndex.has(id)) idToIndex.set(id, i);
  });
  const drafts = found.map((f, i): TaskDraft => {
    if (typeof f.element === 'string' || typeof f.element === 'number') {
      const text = String(f.element).trim();
      return {
        title: clip(text, TITLE_CHARS),
        source: { kind: 'spec', section: f.pointer.slice(0, 500) },
        phase: phaseFromWords(`${f.parentTitle ?? ''} ${text}`),
      };
    }
    const e = f.element as Record<string, unknown>;
    const title =
      str(e.title) ??
      str(e.name) ??
      str(e.summary) ??
      str(e.story) ??
      str(e.description) ??
      str(e.id) ??
      `Item ${i + 1}`;
    const description = str(e.description) ?? str(e.details) ?? str(e.desc) ?? str(e.story) ?? '';
    const acceptance = strings(e.acceptance_criteria ?? e.acceptanceCriteria ?? e.acceptance ?? e.criteria);
    const deps = strings(e.dependencies ?? e.depends_on ?? e.dependsOn ?? e.blockedBy)
      .map((d) => idToIndex.get(d))
      .filter((n): n is number => n !== undefined && n !== i)
      .map((n) => `t${n + 1}`);
    // At most MAX_DEPENDENCIES distinct ones: a task record holds no more.
    const dependencies = [...new Set(deps)].slice(0, MAX_DEPENDENCIES);
    const label = `${f.parentTitle ? `${f.parentTitle} ` : ''}${title} ${str(e.phase) ?? ''} ${str(e.type) ?? ''}`;
    return {
      title: clip(title, TITLE_CHARS),
      description: clip(description === title ? '' : description, DESCRIPTION_CHARS),
      acceptance: acceptance.slice(0, MAX_ACCEPTANCE).map((a) => clip(a, ACCEPTANCE_CHARS)),
      priority: priorityWord(String(e.priority ?? '')) ?? numericPriority(e.priority) ?? 'medium',
      phase: phaseFromWords(label),
      dependencies,
      source: { kind: 'spec', section: f.pointer.slice(0, 500) },
    };
  });
  checkSpecCycle(drafts, found);
  return drafts;
}

/** A dependency cycle among the spec's elements would be refused when queued: report it as a spec error now. */
function checkSpecCycle(drafts: readonly TaskDraft[], found: readonly Found[]): void {
  const index = (id: string) => Number(id.slice(1)) - 1;
  const cycle = findCycle(
    drafts.map((_, i) => `t${i + 1}`),
    (id) => drafts[index(id)]?.dependencies ?? [],
  );
  if (!cycle) return;
  const names = cycle.map((id) => {
    const el = found[index(id)]?.element;
    return (el && typeof el === 'object' ? str((el as Record<string, unknown>).id) : undefined) ?? id;
  });
  throw new SpecError(`the spec's dependencies form a cycle: ${names.join(' -> ')}; remove one of these dependencies`);
}

function collectElements(
  node: unknown,
  pointer: string,
  parentTitle: string | null,
  out: Found[],
  depth: number,
): void {
  if (depth > 6 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const here = `${pointer}/${escapePointer(key)}`;
    if (Array.isArray(value) && TASK_ARRAY_KEY.test(key)) {
      collectArray(value, here, parentTitle, out, depth);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      collectElements(value, here, parentTitle, out, depth + 1);
    }
  }
}

/** Each element of a list of tasks is one (a blank string is none). */
function collectArray(
  list: readonly unknown[],
  pointer: string,
  parentTitle: string | null,
  out: Found[],
  depth: number,
): void {
  list.forEach((el, i) => {
    const at = `${pointer}/${i}`;
    const before = out.length;
    if (el && typeof el === 'object' && !Array.isArray(el)) {
      const title =
        str((el as Record<string, unknown>).title) ?? str((el as Record<string, unknown>).name) ?? parentTitle;
      collectElements(el, at, title, out, depth + 1);
    }
    // An element with its own list of tasks (an epic with stories) is represented by those tasks.
    if (out.length === before && (str(el) !== undefined || (el && typeof el === 'object' && !Array.isArray(el)))) {
      out.splice(before, 0, { element: el, pointer: at, parentTitle });
    }
  });
}

// ---- OpenAPI ----------------------------------------------------------------------------------------------

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;

function fromOpenApi(doc: unknown): TaskDraft[] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new SpecError('the OpenAPI document is not an object');
  const paths = (doc as Record<string, unknown>).paths;
  if (paths === undefined)
    throw new SpecError(
      'the OpenAPI document has no `paths`: add the operations to build, or give the spec as Markdown',
    );
  if (paths === null || typeof paths !== 'object' || Array.isArray(paths))
    throw new SpecError('`paths` in the OpenAPI document must be an object of path -> operations');
  const drafts: TaskDraft[] = [];
  for (const [route, item] of Object.entries(paths as Record<string, unknown>)) {
    if (route.startsWith('x-')) continue; // a specification extension, not a path
    if (!route.startsWith('/')) throw new SpecError(`OpenAPI path "${clip(route, 100)}" must start with "/"`);
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      throw new SpecError(`OpenAPI path "${clip(route, 100)}" must be an object of operations`);
    for (const method of METHODS) {
      const op = (item as Record<string, unknown>)[method];
      if (op === undefined) continue;
      if (op === null || typeof op !== 'object' || Array.isArray(op))
        throw new SpecError(`OpenAPI operation ${method.toUpperCase()} ${clip(route, 100)} must be an object`);
      const o = op as Record<string, unknown>;
      const summary = str(o.summary) ?? str(o.operationId);
      const responses =
        o.responses && typeof o.responses === 'object' ? Object.entries(o.responses as Record<string, unknown>) : [];
      const acceptance = responses.map(([code, r]) => {
        const d = r && typeof r === 'object' ? str((r as Record<string, unknown>).description) : undefined;
        return clip(`${method.toUpperCase()} ${route} responds ${code}${d ? ` (${d})` : ''}`, ACCEPTANCE_CHARS);
      });
      const tags = strings(o.tags);
      drafts.push({
        title: clip(`${method.toUpperCase()} ${route}${summary ? `: ${summary}` : ''}`, TITLE_CHARS),
        description: clip(str(o.description) ?? '', DESCRIPTION_CHARS),
        acceptance: acceptance.slice(0, MAX_ACCEPTANCE),
        priority: o.deprecated === true ? 'low' : 'medium',
        phase: 'DEVELOPMENT',
        source: {
          kind: 'spec',
          section: `paths.${route}.${method}${tags.length ? ` [${tags.join(', ')}]` : ''}`.slice(0, 500),
        },
      });
    }
  }
  if (drafts.length === 0)
    throw new SpecError(
      'the OpenAPI document has `paths` but no operations (get, post, ...): add them, or give the spec as Markdown',
    );
  return drafts;
}

// ---- helpers ------------------------------------------------------------------------------------------------

function wholeTextTask(text: string): TaskDraft {
  const title = clip(firstLine(text), TITLE_CHARS);
  const description = text.trim() === title ? '' : clip(text.trim(), DESCRIPTION_CHARS);
  return { title, description, phase: 'DEVELOPMENT', source: { kind: 'spec', section: null } };
}

/** Give the drafts their ids in document order and resolve the criteria tasks' dependencies on their section. */
function numbered(drafts: Draft[]): TaskDraft[] {
  const out: TaskDraft[] = drafts.map(({ dependsOnSection: _, ...d }, i) => ({ ...d, id: `t${i + 1}` }));
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
  return out;
}

function phaseFromWords(text: string): Phase {
  for (const [re, phase] of PHASE_WORDS) if (re.test(text)) return phase;
  return 'DEVELOPMENT';
}

function numericPriority(v: unknown): Priority | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  return v <= 0 ? 'critical' : v <= 1 ? 'high' : v <= 2 ? 'medium' : 'low';
}

function cleanInline(s: string): string {
  return s
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__|`)/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}

function firstLine(text: string): string {
  return (
    text
      .split(/\r?\n/)
      .map((l) => l.replace(/^\s*#+\s*/, '').trim())
      .find((l) => l !== '') ?? 'the spec'
  );
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : typeof v === 'number' ? String(v) : undefined;
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return v.trim() ? [v.trim()] : [];
  if (Array.isArray(v)) return v.map((x) => str(x)).filter((x): x is string => x !== undefined);
  return [];
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
