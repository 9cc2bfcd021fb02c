/**
 * Structured specs: JSON or YAML PRDs, OpenAPI / Swagger documents, and GitHub issues as `gh issue view --json`
 * prints them. Pure: a parsed value in, drafts out; anything that is not one of the shapes below is a SpecError
 * that names the field at fault and the shape expected.
 *
 * PRD: arrays of requirements under keys such as `features`, `requirements`, `userStories`, `tasks`, `epics`
 * (nested ones too: an epic with stories is represented by its stories), or a top-level array. Each element: a
 * string, or an object with a title (title/name/summary/story, or a user story as role/want/benefit fields),
 * description, acceptance criteria (strings, or Given/When/Then objects), priority, and dependencies on other
 * elements' `id`s. An object with a title and a description but no such array is one requirement.
 * OpenAPI 3.0 / 3.1 and Swagger 2.0: `info.title` names the run; one requirement per operation, its documented
 * responses the acceptance criteria.
 */
import { SpecError } from '../../errors.js';
import type { Draft } from './draft.js';
import {
  ACCEPTANCE_CHARS,
  DESCRIPTION_CHARS,
  MAX_ACCEPTANCE,
  TITLE_CHARS,
  clip,
  collapse,
  gherkinCriteria,
  isModal,
  numericPriority,
  phaseFromWords,
  priorityWord,
  sentences,
} from './words.js';

export interface StructuredSpec {
  title: string | null;
  drafts: Draft[];
}

const TASK_ARRAY_KEY =
  /^(features|user_?stories|stories|requirements|functional_?requirements|non_?functional_?requirements|tasks|todos|epics|items|milestones|deliverables|use_?cases|backlog)$/i;
const TASK_ARRAY_NAMES = 'features, requirements, userStories, stories, tasks, epics';

/** A GitHub issue as `gh issue view --json title,body` prints it: its body is a Markdown spec. */
export function issueOf(doc: unknown): { title: string | null; body: string } | undefined {
  if (!isObject(doc) || typeof doc.body !== 'string') return undefined;
  if (Object.entries(doc).some(([k, v]) => Array.isArray(v) && TASK_ARRAY_KEY.test(k))) return undefined;
  return { title: str(doc.title) ?? null, body: doc.body };
}

// ---- PRD --------------------------------------------------------------------------------------------------

interface Found {
  element: unknown;
  pointer: string;
  parentTitle: string | null;
}

export function fromPrd(doc: unknown): StructuredSpec {
  if (doc === null || typeof doc !== 'object')
    throw new SpecError(
      'the spec parsed to a single value, not an object or a list: give a PRD object (e.g. {"title": ..., "features": [...]}) or Markdown',
    );
  const title = isObject(doc) ? (str(doc.title) ?? str(doc.name) ?? str(doc.product) ?? null) : null;
  const found: Found[] = [];
  if (Array.isArray(doc)) collectArray(doc, '', null, found, 0);
  else collectElements(doc as Record<string, unknown>, '', null, found, 0);
  if (found.length === 0) return { title, drafts: [wholeObject(doc as Record<string, unknown>)] };
  const drafts = found.map((f) => fromElement(f));
  return { title, drafts };
}

/** A PRD with no list of requirements: one requirement from its title and description, or an error. */
function wholeObject(d: Record<string, unknown>): Draft {
  if (Array.isArray(d)) throw new SpecError('the spec is an empty list: list the requirements in it');
  const fields = Object.keys(d);
  const title = str(d.title) ?? str(d.name);
  const text = str(d.description) ?? str(d.summary) ?? str(d.overview) ?? str(d.goal) ?? str(d.body);
  if (!title || !text)
    throw new SpecError(
      `the JSON spec has no list of requirements: give one of ${TASK_ARRAY_NAMES} (an array), or a "title" with a "description"` +
        (fields.length ? ` (found ${fields.slice(0, 10).join(', ')})` : ' (found an empty object)'),
    );
  const criteria = sentences(text).filter(isModal);
  return {
    title: clip(title, TITLE_CHARS),
    description: clip(text, DESCRIPTION_CHARS),
    ...(criteria.length ? { acceptance: cap(criteria) } : {}),
    source: { kind: 'spec', section: null },
  };
}

function fromElement(f: Found): Draft {
  const where = f.pointer || '/';
  if (typeof f.element === 'string' || typeof f.element === 'number') {
    const text = String(f.element).trim();
    return {
      title: clip(text, TITLE_CHARS),
      source: { kind: 'spec', section: f.pointer.slice(0, 500) },
      phase: phaseFromWords(`${f.parentTitle ?? ''} ${text}`) ?? 'DEVELOPMENT',
    };
  }
  const e = f.element as Record<string, unknown>;
  const story = userStory(e);
  const title = str(e.title) ?? str(e.name) ?? str(e.summary) ?? story ?? str(e.story) ?? str(e.description);
  if (!title)
    throw new SpecError(
      `${where} has no title: give it a "title" (or "name", "summary", "description"; found ${Object.keys(e).slice(0, 10).join(', ') || 'no fields'})`,
    );
  const description =
    str(e.description) ??
    str(e.details) ??
    str(e.desc) ??
    (story && story !== title ? story : undefined) ??
    str(e.story) ??
    '';
  const acceptance = criteria(
    e.acceptance_criteria ?? e.acceptanceCriteria ?? e.acceptance ?? e.criteria ?? e.scenarios ?? e.tests,
    where,
  );
  const after = strings(e.dependencies ?? e.depends_on ?? e.dependsOn ?? e.blockedBy ?? e.blocked_by);
  const label = `${f.parentTitle ? `${f.parentTitle} ` : ''}${title} ${str(e.phase) ?? ''} ${str(e.type) ?? ''}`;
  const ref = str(e.id) ?? str(e.key);
  // A requirement id the reader refers to ("F1", "REQ-3", "US-2") is carried into the title, as a table's is; a
  // slug ("auth") or a number only links dependencies.
  const shown = ref !== undefined && /^[A-Z][A-Z0-9]*-?\d+(?:\.\d+)*[a-z]?$/.test(ref) && !title.startsWith(ref);
  return {
    title: clip(shown ? `${ref}: ${title}` : title, TITLE_CHARS),
    description: clip(description === title ? '' : description, DESCRIPTION_CHARS),
    acceptance,
    priority: priorityWord(String(e.priority ?? '')) ?? numericPriority(e.priority) ?? 'medium',
    phase: phaseFromWords(label) ?? 'DEVELOPMENT',
    dependencies: [],
    source: { kind: 'spec', section: f.pointer.slice(0, 500) },
    ...(ref !== undefined ? { ref } : {}),
    after,
  };
}

/** "As a <role>, I want <goal> so that <benefit>" from the fields user-story tools export. */
function userStory(e: Record<string, unknown>): string | undefined {
  const role = str(e.as_a) ?? str(e.asA) ?? str(e.role) ?? str(e.persona) ?? str(e.actor);
  const want = str(e.i_want) ?? str(e.iWant) ?? str(e.want) ?? str(e.goal) ?? str(e.action);
  if (!role || !want) return undefined;
  const benefit = str(e.so_that) ?? str(e.soThat) ?? str(e.benefit) ?? str(e.reason);
  const bare = (s: string, lead: RegExp) => s.replace(lead, '').replace(/[.]$/, '');
  return `As ${/^an?\s/i.test(role) ? role : `${/^[aeiou]/i.test(role) ? 'an' : 'a'} ${role}`}, I want ${/^to\s/i.test(bare(want, /^i want\s+/i)) ? '' : 'to '}${bare(want, /^i want\s+/i)}${benefit ? ` so that ${bare(benefit, /^so that\s+/i)}` : ''}`;
}

/** Acceptance criteria: a string (one per line), a list of strings, or Given/When/Then objects. */
function criteria(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return cap(criteriaText(v));
  if (!Array.isArray(v))
    throw new SpecError(`${where}: acceptance criteria must be a list of strings (or one string), not ${typeName(v)}`);
  const out: string[] = [];
  v.forEach((c, i) => {
    if (typeof c === 'string' || typeof c === 'number') out.push(...criteriaText(String(c)));
    else if (isObject(c)) {
      const steps = (['scenario', 'given', 'when', 'then', 'and'] as const)
        .map((k) => [k, str(c[k])] as const)
        .filter(([, s]) => s !== undefined);
      if (steps.some(([k]) => k !== 'scenario')) {
        out.push(
          ...gherkinCriteria(steps.map(([k, s]) => (k === 'scenario' ? `Scenario: ${s}` : `${k} ${s}`))).criteria,
        );
      } else {
        const text = str(c.description) ?? str(c.criterion) ?? str(c.text) ?? str(c.title) ?? str(c.name);
        if (!text)
          throw new SpecError(
            `${where}: acceptance criterion ${i + 1} has no text: give a string, or an object with "given"/"when"/"then" or "description"`,
          );
        out.push(text);
      }
    } else if (c !== null && !(typeof c === 'string' && c.trim() === ''))
      throw new SpecError(`${where}: acceptance criterion ${i + 1} is ${typeName(c)}; give a string`);
  });
  return cap(out);
}

function criteriaText(s: string): string[] {
  const lines = s
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?/, '').trim())
    .filter((l) => l !== '');
  const g = gherkinCriteria(lines);
  return [...g.criteria, ...g.other];
}

function collectElements(
  node: Record<string, unknown>,
  pointer: string,
  parentTitle: string | null,
  out: Found[],
  depth: number,
): void {
  if (depth > 6) return;
  for (const [key, value] of Object.entries(node)) {
    const here = `${pointer}/${escapePointer(key)}`;
    if (Array.isArray(value) && TASK_ARRAY_KEY.test(key)) collectArray(value, here, parentTitle, out, depth);
    else if (isObject(value)) collectElements(value, here, parentTitle, out, depth + 1);
  }
}

/** Each element of a list of requirements is one (a blank string or null is none; other values are errors). */
function collectArray(
  list: readonly unknown[],
  pointer: string,
  parentTitle: string | null,
  out: Found[],
  depth: number,
): void {
  list.forEach((el, i) => {
    const at = `${pointer}/${i}`;
    if (el === null || (typeof el === 'string' && el.trim() === '')) return;
    if (typeof el === 'boolean' || Array.isArray(el))
      throw new SpecError(`${at} is ${typeName(el)}: give each requirement as a string or an object with a "title"`);
    const before = out.length;
    if (isObject(el)) collectElements(el, at, str(el.title) ?? str(el.name) ?? parentTitle, out, depth + 1);
    // An element with its own list of requirements (an epic with stories) is represented by those.
    if (out.length === before) out.splice(before, 0, { element: el, pointer: at, parentTitle });
  });
}

// ---- OpenAPI ----------------------------------------------------------------------------------------------

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;

export function fromOpenApi(doc: unknown): StructuredSpec {
  if (!isObject(doc)) throw new SpecError('the OpenAPI document is not an object');
  const info = isObject(doc.info) ? doc.info : {};
  const title = str(info.title) ?? null;
  const paths = doc.paths;
  if (paths === undefined)
    throw new SpecError(
      'the OpenAPI document has no `paths`: add the operations to build, or give the spec as Markdown',
    );
  if (!isObject(paths)) throw new SpecError('`paths` in the OpenAPI document must be an object of path -> operations');
  const drafts: Draft[] = [];
  for (const [route, item] of Object.entries(paths)) {
    if (route.startsWith('x-')) continue; // a specification extension, not a path
    if (!route.startsWith('/')) throw new SpecError(`OpenAPI path "${clip(route, 100)}" must start with "/"`);
    if (!isObject(item)) throw new SpecError(`OpenAPI path "${clip(route, 100)}" must be an object of operations`);
    for (const method of METHODS) {
      const op = item[method];
      if (op === undefined) continue;
      if (!isObject(op))
        throw new SpecError(`OpenAPI operation ${method.toUpperCase()} ${clip(route, 100)} must be an object`);
      const summary = str(op.summary) ?? str(op.operationId);
      const responses = isObject(op.responses) ? Object.entries(op.responses) : [];
      const acceptance = responses.map(([code, r]) => {
        const d = isObject(r) ? str(r.description) : undefined;
        return clip(
          `${method.toUpperCase()} ${route} responds ${code}${d ? ` (${collapse(d)})` : ''}`,
          ACCEPTANCE_CHARS,
        );
      });
      const tags = strings(op.tags);
      drafts.push({
        title: clip(`${method.toUpperCase()} ${route}${summary ? `: ${collapse(summary)}` : ''}`, TITLE_CHARS),
        description: clip(str(op.description) ?? '', DESCRIPTION_CHARS),
        acceptance: acceptance.slice(0, MAX_ACCEPTANCE),
        priority: op.deprecated === true ? 'low' : 'medium',
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
  return { title, drafts };
}

/** Is this parsed document an OpenAPI or Swagger one (by its version field, not by its file name)? */
export function isOpenApi(doc: unknown): boolean {
  return isObject(doc) && (typeof doc.openapi === 'string' || doc.swagger !== undefined);
}

// ---- helpers ------------------------------------------------------------------------------------------------

function cap(items: readonly string[]): string[] {
  return [...new Set(items.map((i) => clip(collapse(i), ACCEPTANCE_CHARS)).filter((i) => i !== ''))].slice(
    0,
    MAX_ACCEPTANCE,
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
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
