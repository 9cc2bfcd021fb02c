/**
 * Markdown (and plain-text) specs, read from the syntax tree that mdast-util-from-markdown builds with the GFM
 * extensions (tables, task lists): never from line patterns, so code blocks, lazy continuation lines, emphasis
 * and HTML comments are what CommonMark says they are.
 *
 * What becomes a requirement (a task), in document order:
 * - each item of a list (bullet, numbered, or task list; a checked `- [x]` item is already done and skipped):
 *   its nested items, Given/When/Then lines and must-sentences of its own paragraphs are its acceptance criteria;
 * - each row of a table that has a requirement (or ID) column, found by its header: the ID, priority and
 *   acceptance-criteria columns are read when present, a MoSCoW "Won't" row is out of scope;
 * - each user story ("As a ..., I want ... so that ..."), with the criteria that follow it;
 * - each must/shall/should sentence of prose; in a section with no list or table, an instruction sentence too
 *   ("Build a CLI that ...");
 * - a section with text but none of the above: one task named by its heading.
 * Criteria given apart ("Acceptance criteria:" followed by a list, or an "Acceptance criteria" subsection) go to
 * the one task of their section, or to a criteria task that depends on all of the section's tasks.
 * Sections such as "Non-goals", "Out of scope" or "Background" give nothing.
 */
import type { List, ListItem, Nodes, Paragraph, Root, RootContent, Table } from 'mdast';
import { createRequire } from 'node:module';
import { gfmAutolinkLiteralFromMarkdown } from 'mdast-util-gfm-autolink-literal';
import { gfmFootnoteFromMarkdown } from 'mdast-util-gfm-footnote';
import { gfmStrikethroughFromMarkdown } from 'mdast-util-gfm-strikethrough';
import { gfmTableFromMarkdown } from 'mdast-util-gfm-table';
import { gfmTaskListItemFromMarkdown } from 'mdast-util-gfm-task-list-item';
import type { Phase } from '../phases.js';
import { parseYaml } from '../yaml.js';
import type { Priority } from '../tasks.js';
import type { Draft } from './draft.js';
import {
  ACCEPTANCE_CHARS,
  CRITERIA_LABEL,
  CRITERIA_SECTION,
  DESCRIPTION_CHARS,
  MAX_ACCEPTANCE,
  REQUIREMENT_ID,
  SKIPPED_SECTION,
  TITLE_CHARS,
  clip,
  collapse,
  gherkinCriteria,
  isGherkin,
  isImperative,
  isModal,
  isUserStory,
  isWontHave,
  phaseFromWords,
  priorityMarker,
  priorityWord,
  sentences,
} from './words.js';

export interface MarkdownSpec {
  /** Markdown structure (a heading, list or table), or prose only. */
  structured: boolean;
  /** Top-level headings (depth 1 and 2): a sign of the spec's breadth for the tier. */
  sections: number;
  title: string | null;
  drafts: Draft[];
  notes: string[];
}

declare const require: ((id: string) => unknown) | undefined;

interface Parser {
  fromMarkdown: typeof import('mdast-util-from-markdown').fromMarkdown;
  gfm: typeof import('micromark-extension-gfm').gfm;
}

/**
 * GFM's tree extensions, the reading half only (what mdast-util-gfm's gfmFromMarkdown returns): imported one by
 * one so that the bundles leave out the writing half (mdast-util-to-markdown and its handlers), which loki never
 * uses. These five are small factories; the parser itself stays loaded on first use.
 */
function gfmFromMarkdown() {
  return [
    gfmAutolinkLiteralFromMarkdown(),
    gfmFootnoteFromMarkdown(),
    gfmStrikethroughFromMarkdown(),
    gfmTableFromMarkdown(),
    gfmTaskListItemFromMarkdown(),
  ];
}
let parser: Parser | undefined;

/**
 * The parser, loaded on first use like the YAML one (domain/yaml.ts): only loki_start reads specs, and the server
 * should not pay for micromark at start-up. In the bundle esbuild turns the requires into lazily evaluated
 * modules; from source (tests) createRequire loads the ES modules (Node >= 22.12).
 */
function load(): Parser {
  // Each require is written out: esbuild bundles only a literal `require('name')`.
  if (!parser)
    parser =
      typeof require === 'function'
        ? {
            ...(require('mdast-util-from-markdown') as Pick<Parser, 'fromMarkdown'>),
            ...(require('micromark-extension-gfm') as Pick<Parser, 'gfm'>),
          }
        : {
            ...(createRequire(import.meta.url)('mdast-util-from-markdown') as Pick<Parser, 'fromMarkdown'>),
            ...(createRequire(import.meta.url)('micromark-extension-gfm') as Pick<Parser, 'gfm'>),
          };
  return parser;
}

/** Above this size a spec is parsed section by section (see `sectionChunks`). */
export const CHUNKED_ABOVE = 16 * 1024;

/**
 * The syntax tree of a spec. micromark's time grows faster than the text on long documents (a 100 KB spec of
 * 2,000 sections took seconds), so a large one is cut before each top-level ATX heading and the parts are parsed
 * apart: CommonMark ends every open block at such a line (a heading is never a lazy continuation), so the tree is
 * the same, except that a link reference defined in one part does not resolve in another.
 */
export function parseMarkdown(text: string, chunkAbove = CHUNKED_ABOVE): Root {
  const { fromMarkdown, gfm } = load();
  const parse = (t: string) => fromMarkdown(t, { extensions: [gfm()], mdastExtensions: [gfmFromMarkdown()] });
  if (text.length <= chunkAbove) return parse(text);
  const root: Root = { type: 'root', children: [] };
  for (const chunk of sectionChunks(text)) root.children.push(...parse(chunk).children);
  return root;
}

/** Parts of about this size: each parse has a fixed cost, and its time grows faster than its text. */
const CHUNK_SIZE = 4 * 1024;

/** The text cut before ATX headings at the start of a line, outside fenced code, into parts of about CHUNK_SIZE. */
function sectionChunks(text: string): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let size = 0;
  let fence: { char: string; length: number } | undefined;
  for (const line of text.split(/(?<=\n)/)) {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (marker && marker[1]![0] === fence.char && marker[1]!.length >= fence.length && /^ {0,3}[`~]+\s*$/.test(line))
        fence = undefined;
    } else if (marker && !(marker[1]![0] === '`' && line.slice(marker[0].length).includes('`'))) {
      fence = { char: marker[1]![0]!, length: marker[1]!.length };
    } else if (/^#{1,6}(?:[ \t]|\r?\n|$)/.test(line) && size >= CHUNK_SIZE) {
      chunks.push(current.join(''));
      current = [];
      size = 0;
    }
    current.push(line);
    size += line.length;
  }
  if (current.length > 0) chunks.push(current.join(''));
  return chunks;
}

interface Section {
  level: number;
  title: string;
  path: string[];
  skipped: boolean;
  criteria: boolean;
  blocks: RootContent[];
  parent: Section | undefined;
}

/** Requirements of a Markdown or plain-text spec. */
export function readMarkdown(text: string, documentTitle?: string): MarkdownSpec {
  const front = frontMatter(text);
  const tree = parseMarkdown(front.body);
  // The title a document is given from outside (an issue's) names the work of its text before any heading.
  const root: Section = {
    level: 0,
    title: documentTitle ?? '',
    path: [],
    skipped: false,
    criteria: false,
    blocks: [],
    parent: undefined,
  };
  const sections: Section[] = [root];
  let current = root;
  let title: string | null = front.title;
  for (const block of tree.children) {
    if (block.type !== 'heading') {
      current.blocks.push(block);
      continue;
    }
    const heading = collapse(inline(block));
    if (heading === '') continue; // an empty heading ("###") names nothing: its text belongs to the section above
    // The title is an H1, or a first heading that opens the document and is not a section such as "Problem".
    if (title === null && (block.depth === 1 || (sections.length === 1 && !SKIPPED_SECTION.test(heading))))
      title = heading;
    let parent = current;
    while (parent.level >= block.depth && parent.parent) parent = parent.parent;
    const section: Section = {
      level: block.depth,
      title: heading,
      path: [...parent.path, heading],
      skipped: parent.skipped || SKIPPED_SECTION.test(heading),
      criteria: CRITERIA_SECTION.test(heading),
      blocks: [],
      parent,
    };
    // A document title (an H1 before any other heading) is not a section of work: it stays out of the path, and
    // names the product, not a kind of section ("# Notes" is a notes app, not a notes section).
    if (block.depth === 1 && parent === root && sections.length === 1) {
      section.path = [];
      section.skipped = false;
      section.criteria = false;
    }
    sections.push(section);
    current = section;
  }
  // No title heading: the first sentence of the first paragraph names the document (an issue body, a brief).
  if (title === null) {
    const first = tree.children.find((b): b is Paragraph => b.type === 'paragraph');
    const sentence = first ? sentences(inline(first))[0] : undefined;
    if (sentence) title = clip(sentence, TITLE_CHARS);
  }
  const structured = tree.children.some((b) => b.type === 'heading' || b.type === 'list' || b.type === 'table');
  const reader = new Reader();
  const drafts = structured ? reader.sections(sections, root) : reader.prose(root);
  const notes: string[] = [];
  if (reader.done > 0) notes.push(`${reader.done} checked item(s) ("- [x]") are already done and were not queued`);
  if (reader.wont > 0) notes.push(`${reader.wont} requirement(s) marked "Won't" are out of scope and were not queued`);
  const topHeadings = tree.children.filter((b) => b.type === 'heading' && b.depth <= 2).length;
  return { structured, sections: topHeadings, title, drafts, notes };
}

/** What one section gives: its tasks, and criteria that were not attached to one of them. */
interface Found {
  tasks: Draft[];
  loose: string[];
  body: string[];
}

class Reader {
  done = 0;
  wont = 0;

  /** A spec of prose only: its requirement sentences, each a task (none: the caller makes the whole text one). */
  prose(root: Section): Draft[] {
    const out: Draft[] = [];
    for (const block of root.blocks) {
      if (block.type !== 'paragraph') continue;
      for (const s of sentences(inline(block))) {
        const last = out[out.length - 1];
        if (isModal(s) && last && refersBack(s)) last.acceptance = cap([...(last.acceptance ?? []), s]);
        else if (isModal(s) || isImperative(s)) out.push(this.draft(s, root, 'DEVELOPMENT'));
        // Other sentences say more about the requirement before them ("Quotes come from a JSON file.").
        else if (last)
          last.description = clip(`${last.description ? `${last.description} ` : ''}${s}`, DESCRIPTION_CHARS);
      }
    }
    return out;
  }

  sections(sections: Section[], root: Section): Draft[] {
    const found = new Map<Section, Found>();
    for (const s of sections) if (!s.skipped && !s.criteria) found.set(s, this.section(s));
    // Criteria subsections give their items to the section above them.
    for (const s of sections) {
      if (s.skipped || !s.criteria) continue;
      const owner = s.parent ?? root;
      const f = found.get(owner);
      if (f) f.loose.push(...this.criteriaOf(s.blocks));
    }
    const ordered: Draft[] = [];
    // The criteria task of a section with subsections waits until the last of them, so it follows (and depends
    // on) every task of the section. Sections come in document order, so the waiting ones form a stack.
    const waiting: { section: Section; task: Draft }[] = [];
    const release = (next?: Section) => {
      while (waiting.length > 0 && !(next && within(next, waiting[waiting.length - 1]!.section)))
        ordered.push(waiting.pop()!.task);
    };
    let topCriteria: { section: Section; items: string[] } | undefined;
    for (const s of sections) {
      release(s);
      const f = found.get(s);
      if (!f) continue;
      const hasSubsections = sections.some((c) => c.parent === s && !c.criteria && !c.skipped);
      const hasAnySubsections = sections.some((c) => c.parent === s && !c.criteria);
      const isTop = s.path.length === 0;
      // A section with text (or criteria) and no requirements is one requirement named by its heading.
      const named = s !== root || s.title !== '';
      if (f.tasks.length === 0 && named && !hasAnySubsections && (f.body.length > 0 || f.loose.length > 0)) {
        f.tasks.push({
          ...this.draft(s.title, s, phaseFor(s, s.title)),
          description: clip(f.body.join(' '), DESCRIPTION_CHARS),
          ...(f.loose.length > 0 ? { acceptance: cap(f.loose) } : {}),
        });
        f.loose = [];
      }
      // A section named by an id ("### US-3: Export") carries it to its one requirement.
      const id = REQUIREMENT_ID.exec(`${s.title} `)?.[1];
      if (id && f.tasks.length === 1 && !REQUIREMENT_ID.test(f.tasks[0]!.title) && f.tasks[0]!.title !== s.title) {
        f.tasks[0]!.title = clip(`${id}: ${f.tasks[0]!.title}`, TITLE_CHARS);
        f.tasks[0]!.ref ??= id;
      }
      if (f.loose.length > 0) {
        if (isTop) topCriteria = { section: s, items: f.loose };
        else if (hasSubsections) waiting.push({ section: s, task: criteriaTask(s, f.loose) });
        else if (f.tasks.length === 1) f.tasks[0]!.acceptance = cap([...(f.tasks[0]!.acceptance ?? []), ...f.loose]);
        else f.tasks.push(criteriaTask(s, f.loose));
      }
      ordered.push(...f.tasks);
    }
    release();
    // Criteria for the whole document (under the title, or with no heading above them) come last.
    if (topCriteria) ordered.push(criteriaTask(topCriteria.section, topCriteria.items, 'QA'));
    return ordered;
  }

  /** The requirements of one section's own blocks (not its subsections). */
  section(s: Section): Found {
    const f: Found = { tasks: [], loose: [], body: [] };
    const hasItems = s.blocks.some((b) => b.type === 'list' || (b.type === 'table' && tableColumns(b) !== null));
    /** The requirement criteria attach to: the last one, while nothing else intervened. */
    let last: Draft | undefined;
    let lastIsStory = false;
    /** A label such as "Acceptance criteria:" came just before: the next list or table holds criteria. */
    let expectCriteria = false;
    const addCriteria = (items: string[]) => {
      if (items.length === 0) return;
      if (last) last.acceptance = cap([...(last.acceptance ?? []), ...items]);
      else f.loose.push(...items);
    };
    const push = (d: Draft, story = false) => {
      f.tasks.push(d);
      last = d;
      lastIsStory = story;
    };
    for (const block of s.blocks) {
      if (block.type === 'paragraph') {
        const text = inline(block);
        const lines = text.split('\n').map((l) => l.trim());
        const label = criteriaLabel(lines[0]!);
        if (label !== null) {
          expectCriteria = true;
          addCriteria(this.criteriaLines([label, ...lines.slice(1)].filter((l) => l !== '')));
          continue;
        }
        if (isGherkin(lines[0]!)) {
          const g = gherkinCriteria(lines);
          addCriteria(g.criteria);
          f.body.push(...g.other);
          continue;
        }
        if (isUserStory(text)) {
          const [story, ...rest] = sentences(text);
          const d = this.draft(story!, s, phaseFor(s, story!));
          const more = rest.filter(isModal);
          if (more.length) d.acceptance = cap(more);
          const other = rest.filter((r) => !isModal(r)).join(' ');
          if (other) d.description = clip(other, DESCRIPTION_CHARS);
          push(d, true);
          expectCriteria = false;
          continue;
        }
        const before = last;
        for (const sentence of sentences(text)) {
          // A must-sentence right after a user story, or one that refers back to a requirement earlier in the
          // same paragraph ("It must work offline."), is one of its criteria.
          const sameParagraph = last !== undefined && last !== before;
          if (isModal(sentence) && last && (lastIsStory || (sameParagraph && refersBack(sentence))))
            addCriteria([sentence]);
          else if (isModal(sentence) || (!hasItems && isImperative(sentence)))
            push(this.draft(sentence, s, phaseFor(s, sentence)));
          else f.body.push(sentence);
        }
        continue;
      }
      if (block.type === 'list') {
        if (expectCriteria || (last && block.children.every((i) => isGherkin(firstText(i))))) {
          addCriteria(this.listCriteria(block, ''));
          expectCriteria = false;
          continue;
        }
        for (const item of block.children) {
          if (item.checked === true) {
            this.done++;
            continue;
          }
          const d = this.listItem(item, s);
          if (d) push(d, isUserStory(d.title));
        }
        continue;
      }
      if (block.type === 'table') {
        const columns = tableColumns(block);
        if (columns === null) {
          // A table of something else (fields, examples) describes the section: one "a | b;" per row.
          f.body.push(
            ...block.children.slice(1).map((r) => `${r.children.map((c) => collapse(inline(c))).join(' | ')};`),
          );
          continue;
        }
        const rows = this.tableRows(block, columns, s);
        if (expectCriteria) addCriteria(rows.map((r) => r.title));
        else for (const d of rows) push(d, isUserStory(d.title));
        expectCriteria = false;
      }
      // Code, quotes, HTML and rules are context: examples and notes, not requirements.
    }
    return f;
  }

  /** Items, Given/When/Then runs and sentences of a criteria section. */
  criteriaOf(blocks: readonly RootContent[]): string[] {
    const out: string[] = [];
    for (const b of blocks) {
      if (b.type === 'list') out.push(...this.listCriteria(b, ''));
      else if (b.type === 'paragraph') out.push(...this.criteriaLines(inline(b).split('\n')));
      else if (b.type === 'table') {
        const columns = tableColumns(b);
        const rows = columns ? this.tableRows(b, columns, undefined) : [];
        out.push(...rows.map((r) => r.title));
      }
    }
    return out;
  }

  criteriaLines(lines: readonly string[]): string[] {
    const g = gherkinCriteria(lines);
    return [...g.criteria, ...g.other.flatMap((l) => sentences(l))];
  }

  /** A list of criteria, nested items flattened: "group: item". */
  listCriteria(list: List, prefix: string): string[] {
    const out: string[] = [];
    for (const item of list.children) {
      const own = collapse(
        item.children
          .filter((c) => c.type === 'paragraph')
          .map((p) => inline(p))
          .join(' '),
      );
      const nested = item.children.filter((c): c is List => c.type === 'list');
      if (own !== '' && nested.length === 0) out.push(clip(`${prefix}${own}`, ACCEPTANCE_CHARS));
      for (const n of nested) out.push(...this.listCriteria(n, own ? `${prefix}${own}: ` : prefix));
    }
    return out;
  }

  /** One list item as a requirement: its first line the title, the rest its description and criteria. */
  listItem(item: ListItem, s: Section): Draft | undefined {
    const paragraphs = item.children.filter((c): c is Paragraph => c.type === 'paragraph');
    const first = paragraphs[0] ? inline(paragraphs[0]).split('\n') : [];
    const head = collapse(first[0] ?? '');
    if (head === '' || /^\[[ xX]?\]$/.test(head)) return undefined; // an empty item, or an empty checkbox
    const storyText = isUserStory(head) ? collapse(first.join(' ')) : undefined;
    const titleText = storyText ?? head;
    const d = this.draft(titleText, s, phaseFor(s, titleText));
    const description: string[] = [];
    if (titleText.length > TITLE_CHARS) description.push(titleText);
    const criteria: string[] = [];
    const readLines = (lines: string[]) => {
      const g = gherkinCriteria(lines);
      criteria.push(...g.criteria);
      for (const line of g.other) {
        for (const sentence of sentences(line)) (isModal(sentence) ? criteria : description).push(sentence);
      }
    };
    if (!storyText) readLines(first.slice(1));
    let expectCriteria = false;
    for (const child of item.children) {
      if (child === paragraphs[0]) continue;
      if (child.type === 'paragraph') {
        const lines = inline(child).split('\n');
        const label = criteriaLabel(lines[0]!.trim());
        if (label !== null) {
          expectCriteria = true;
          readLines([label, ...lines.slice(1)].filter((l) => l.trim() !== ''));
        } else readLines(lines);
      } else if (child.type === 'list') {
        criteria.push(...this.listCriteria(child, ''));
        expectCriteria = false;
      } else if (child.type === 'table' && expectCriteria) {
        const columns = tableColumns(child);
        if (columns) criteria.push(...this.tableRows(child, columns, s).map((r) => r.title));
      }
    }
    if (description.length > 0) d.description = clip(description.join(' '), DESCRIPTION_CHARS);
    if (criteria.length > 0) d.acceptance = cap(criteria);
    return d;
  }

  tableRows(table: Table, columns: Columns, s: Section | undefined): Draft[] {
    const out: Draft[] = [];
    for (const row of table.children.slice(1)) {
      const cell = (i: number | undefined) =>
        i === undefined ? '' : inline(row.children[i] ?? { type: 'text', value: '' });
      const requirement = collapse(cell(columns.requirement));
      if (requirement === '') continue;
      const priorityText = collapse(cell(columns.priority));
      if (isWontHave(priorityText)) {
        this.wont++;
        continue;
      }
      const ref = collapse(cell(columns.id)) || undefined;
      const title = ref && !requirement.startsWith(ref) ? `${ref}: ${requirement}` : requirement;
      const d = this.draft(title, s, s ? phaseFor(s, requirement) : 'DEVELOPMENT');
      if (ref) d.ref = ref;
      const priority = priorityWord(priorityText);
      if (priority) d.priority = priority;
      const notes = columns.notes.map((i) => collapse(cell(i))).filter((n) => n !== '');
      if (notes.length > 0 || title.length > TITLE_CHARS)
        d.description = clip(
          [title.length > TITLE_CHARS ? title : '', ...notes].filter(Boolean).join(' '),
          DESCRIPTION_CHARS,
        );
      const criteria = columns.acceptance.flatMap((i) =>
        cell(i)
          .split(/\n|;\s+/)
          .map((c) => collapse(c))
          .filter((c) => c !== ''),
      );
      if (criteria.length > 0) d.acceptance = cap(criteria);
      const after = columns.dependsOn
        .flatMap((i) => cell(i).split(/[,;\s]+/))
        .map((x) => x.trim())
        .filter((x) => x !== '' && !/^(none|n\/a|-|\u2014)$/i.test(x));
      if (after.length > 0) d.after = after;
      out.push(d);
    }
    return out;
  }

  draft(text: string, s: Section | undefined, phase: Phase): Draft {
    const title = clip(collapse(text), TITLE_CHARS);
    const ref = REQUIREMENT_ID.exec(title)?.[1];
    return {
      title,
      description: '',
      phase,
      priority: priorityFor(s, text),
      source: { kind: 'spec', section: s ? sectionLabel(s) || null : null },
      ...(ref ? { ref } : {}),
    };
  }
}

// ---- tables -------------------------------------------------------------------------------------------------

interface Columns {
  requirement: number;
  id: number | undefined;
  priority: number | undefined;
  acceptance: number[];
  notes: number[];
  dependsOn: number[];
}

const ID_HEADER =
  /^(#|ids?|refs?|reference|key|no\.?|number|(req(uirement)?|feature|story|us|fr|nfr|item)[ -]?(id|#|no\.?|ref|key))$/i;
const PRIORITY_HEADER = /^(p|priority|prio|moscow|importance|severity|must\/should\/could)$|\bpriority\b/i;
const ACCEPTANCE_HEADER =
  /\b(acceptance|criteria|done when|definition of done|verification|verify|how to (?:verify|test)|expected( result)?|tests?)\b/i;
const DEPENDS_HEADER = /\b(depends( on)?|dependencies|blocked by|prerequisites?)\b/i;
const NOTES_HEADER = /\b(notes?|rationale|comments?|details?|why|reason|context)\b/i;
const REQUIREMENT_HEADER =
  /\b(requirements?|descriptions?|features?|(user )?stor(y|ies)|title|name|summary|capabilit(y|ies)|behaviou?r|functionality|tasks?|what|statement|endpoint|use case)\b/i;

/** The columns of a requirements table, found by their headers; null when the table lists something else. */
function tableColumns(table: Table): Columns | null {
  const header = table.children[0]?.children.map((c) => collapse(inline(c))) ?? [];
  let id: number | undefined;
  let priority: number | undefined;
  const acceptance: number[] = [];
  const notes: number[] = [];
  const dependsOn: number[] = [];
  const rest: number[] = [];
  header.forEach((h, i) => {
    if (id === undefined && ID_HEADER.test(h)) id = i;
    else if (priority === undefined && PRIORITY_HEADER.test(h)) priority = i;
    else if (ACCEPTANCE_HEADER.test(h)) acceptance.push(i);
    else if (DEPENDS_HEADER.test(h)) dependsOn.push(i);
    else if (NOTES_HEADER.test(h) && !REQUIREMENT_HEADER.test(h)) notes.push(i);
    else rest.push(i);
  });
  let requirement = rest.find((i) => REQUIREMENT_HEADER.test(header[i]!));
  // A table with an ID column lists requirements even when the text column is named otherwise.
  if (requirement === undefined && id !== undefined) requirement = rest[0];
  if (requirement === undefined) return null;
  // Other text columns (a "Description" next to a "Feature") are notes.
  for (const i of rest) if (i !== requirement) notes.push(i);
  notes.sort((a, b) => a - b);
  return { requirement, id, priority, acceptance, notes, dependsOn };
}

// ---- inline text --------------------------------------------------------------------------------------------

/**
 * The text of inline content as a reader sees it: emphasis and links reduced to their words, code spans kept in
 * backticks (a machine check reads a path or a command from them), line breaks kept as "\n".
 */
function inline(node: Nodes): string {
  switch (node.type) {
    case 'text':
      return node.value;
    case 'inlineCode':
      return `\`${node.value}\``;
    case 'break':
      return '\n';
    case 'html':
      return /^<br\s*\/?>$/i.test(node.value.trim()) ? '\n' : '';
    case 'image':
    case 'imageReference':
      return node.alt ?? '';
    case 'footnoteReference':
    case 'delete': // struck-through text is what the author took back
      return '';
    default:
      return 'children' in node ? (node.children as Nodes[]).map(inline).join('') : '';
  }
}

/** A sentence whose subject is a pronoun ("It should stream large files") is about the requirement before it. */
function refersBack(sentence: string): boolean {
  return /^(it|this|that|they|these|those|its|their)\b/i.test(sentence);
}

function firstText(item: ListItem): string {
  const p = item.children.find((c): c is Paragraph => c.type === 'paragraph');
  return p ? inline(p).trim() : '';
}

/** The rest of a line that opens with a criteria label ("" when the label is all of it), or null. */
function criteriaLabel(line: string): string | null {
  const m = CRITERIA_LABEL.exec(line);
  if (!m) return null;
  const rest = line.slice(m[0].length);
  // "Criteria for X are..." is a sentence, not a label: a label ends the line or is followed by a colon.
  if (rest.trim() !== '' && !m[0].trimEnd().endsWith(':')) return null;
  return rest.trim();
}

/**
 * YAML front matter (`---` ... `---` at the very top, as static-site and docs tools write it): its `title` names
 * the spec, and the rest of it is metadata, not Markdown (it would read as a setext heading).
 */
function frontMatter(text: string): { title: string | null; body: string } {
  const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/.exec(text);
  if (!m) return { title: null, body: text };
  let data: unknown;
  try {
    data = parseYaml(m[1]!);
  } catch {
    return { title: null, body: text }; // not front matter after all: a thematic break and some text
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { title: null, body: text };
  const t = (data as Record<string, unknown>).title;
  return {
    title: typeof t === 'string' && t.trim() ? clip(collapse(t), TITLE_CHARS) : null,
    body: text.slice(m[0].length),
  };
}

// ---- sections -----------------------------------------------------------------------------------------------

/** Is `s` the section `ancestor` or one of its subsections? */
function within(s: Section, ancestor: Section): boolean {
  for (let at: Section | undefined = s; at; at = at.parent) if (at === ancestor) return true;
  return false;
}

function sectionLabel(s: Section): string {
  return s.path.join(' > ').slice(0, 500);
}

function criteriaTask(s: Section, items: string[], phase?: Phase): Draft {
  const name = s.title || 'the spec';
  return {
    title: clip(`Meet the acceptance criteria of ${name}`, TITLE_CHARS),
    description: `Check every acceptance criterion listed for ${name} and fix what does not hold.`,
    acceptance: cap(items),
    phase: phase ?? phaseFor(s),
    priority: 'high',
    source: { kind: 'spec', section: sectionLabel(s) || null },
    dependsOnSection: true,
  };
}

function cap(items: readonly string[]): string[] {
  return [...new Set(items.map((i) => clip(collapse(i), ACCEPTANCE_CHARS)).filter((i) => i !== ''))].slice(
    0,
    MAX_ACCEPTANCE,
  );
}

/**
 * The innermost heading that names a phase decides, then the item itself; otherwise DEVELOPMENT. The document
 * title is not a section of work ("# Release planner" does not make every task DEPLOYMENT).
 */
function phaseFor(s: Section | undefined, itemText = ''): Phase {
  for (let at: Section | undefined = s; at && at.path.length > 0; at = at.parent) {
    const p = phaseFromWords(at.title);
    if (p) return p;
  }
  return phaseFromWords(itemText) ?? 'DEVELOPMENT';
}

/**
 * A marker on the item itself ("P1", "(high)", "[low]"), else the innermost heading that names a priority (not
 * the document title: "# Core banking" does not make every task high).
 */
function priorityFor(s: Section | undefined, itemText: string): Priority {
  const marker = priorityMarker(itemText);
  if (marker) return marker;
  for (let at: Section | undefined = s; at && at.path.length > 0; at = at.parent) {
    const p = priorityWord(at.title);
    if (p) return p;
  }
  return 'medium';
}
