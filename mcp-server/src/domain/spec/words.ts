/**
 * The words of a spec, shared by every format: sentences (split with Intl.Segmenter, so abbreviations and
 * decimals are left to a real segmenter rather than a regex), which sentences state a requirement, user stories,
 * Given/When/Then criteria, and the phase and priority a heading or an item names. Pure.
 */
import type { Phase } from '../phases.js';
import type { Priority } from '../tasks.js';

export const TITLE_CHARS = 200;
export const DESCRIPTION_CHARS = 8000;
export const ACCEPTANCE_CHARS = 1000;
export const MAX_ACCEPTANCE = 50;
export const MAX_DEPENDENCIES = 100;

// Made on first use: building it loads ICU's sentence rules, about 10 ms that every server and CLI start paid
// before its first spec.
let segmenter: Intl.Segmenter | undefined;

/** The sentences of a run of prose, spaces collapsed, empty ones dropped. */
export function sentences(text: string): string[] {
  const out: string[] = [];
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  for (const { segment } of segmenter.segment(text.replace(/\s+/g, ' '))) {
    const s = segment.trim();
    if (s !== '') out.push(s);
  }
  return out;
}

/**
 * A sentence that binds the product: "must", "shall", "should", "needs to", "is required to". Questions ("Should
 * we cache?") are open points, not requirements.
 */
const MODAL = /\b(must|shall|should|needs? to|has to|have to|is required to|are required to)\b/i;
export function isModal(sentence: string): boolean {
  return MODAL.test(sentence) && !sentence.trimEnd().endsWith('?') && !isAboutTheDocument(sentence);
}

/** "This document describes what the app should do": a sentence about the spec, not a requirement of the product. */
function isAboutTheDocument(sentence: string): boolean {
  return /^(?:this|the)\s+(?:document|spec|specification|prd|page|section|brief|issue|ticket|proposal)\b/i.test(
    sentence,
  );
}

/**
 * An instruction to build something ("Build a CLI that...", "Add a dark mode."): a requirement in a brief written
 * as prose. Only the first word is looked at, and only a verb that asks for work counts.
 */
const IMPERATIVE =
  /^(build|create|add|implement|make|write|provide|support|allow|let|enable|expose|store|show|display|send|return|accept|reject|validate|generate|export|import|convert|parse|render|log|record|track|notify|ensure|include|offer|handle|persist|save|delete|remove|list|search|sort|filter|deploy|ship|serve|use)\b/i;
export function isImperative(sentence: string): boolean {
  return IMPERATIVE.test(sentence) && !sentence.trimEnd().endsWith('?');
}

/** "As a <role>, I want <goal> [so that <benefit>]", optionally after an id ("US-1:"). */
const USER_STORY =
  /^(?:[A-Z][A-Z0-9]*-?\d+[a-z]?\s*[:.)\-\u2013\u2014]\s*)?as an?\s+[^,]+?,?\s+I\s+(?:want|need|would like|can|should be able|wish)\b/i;
export function isUserStory(text: string): boolean {
  return USER_STORY.test(text.trim());
}

/** A line of a Gherkin-style criterion. */
const GHERKIN_LINE = /^(scenario(?: outline)?:|given|when|then|and|but)\b/i;
export function isGherkin(text: string): boolean {
  return /^(scenario(?: outline)?:|given|when|then)\b/i.test(text.trim());
}

/**
 * Given/When/Then lines as criteria: each scenario (or each Given... Then run) is one criterion, its steps joined
 * into one sentence ("Given a saved recipe, when I open it, then I see its steps"). Lines that are not steps are
 * returned apart, in order.
 */
export function gherkinCriteria(lines: readonly string[]): { criteria: string[]; other: string[] } {
  const criteria: string[] = [];
  const other: string[] = [];
  let name: string | null = null;
  let steps: string[] = [];
  let sawThen = false;
  const flush = () => {
    if (steps.length > 0) criteria.push(`${name ? `${name}: ` : ''}${steps.join(', ')}`);
    else if (name) criteria.push(name);
    name = null;
    steps = [];
    sawThen = false;
  };
  for (const raw of lines) {
    const line = raw.trim().replace(/[.;,]$/, '');
    if (line === '') continue;
    const scenario = /^scenario(?: outline)?:\s*(.*)$/i.exec(line);
    if (scenario) {
      flush();
      name = scenario[1]!.trim() || null;
      continue;
    }
    if (!GHERKIN_LINE.test(line)) {
      flush();
      other.push(raw.trim());
      continue;
    }
    const keyword = /^\w+/.exec(line)![0].toLowerCase();
    // A new Given after a Then starts the next criterion.
    if (keyword === 'given' && sawThen) flush();
    if (keyword === 'then') sawThen = true;
    steps.push(steps.length === 0 ? line.charAt(0).toUpperCase() + line.slice(1) : lowerFirst(line));
  }
  flush();
  return { criteria, other };
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** A label that opens a list of criteria: "Acceptance criteria:", "**Definition of done**". */
export const CRITERIA_LABEL =
  /^(?:[\d.]+\s*)?(?:acceptance criteria|acceptance tests?|definition of done|success criteria|done when|exit criteria|criteria)\s*:?/i;

/** Sections that describe what not to build, or context: no tasks come from them (the whole heading must match). */
export const SKIPPED_SECTION =
  /^(?:[\d.]+\s*)?(?:non[- ]?goals?|out of scope|not in scope|won'?t have|future (?:work|ideas|scope)|later|glossary|references?|appendix|open questions|questions|background|context|overview|introduction|summary|motivation|problem statement|table of contents|contents|changelog|notes|assumptions|risks|personas?|stakeholders|timeline|(?:the )?problem|why|current behaviou?r|steps to reproduce|environment|additional context|screenshots|alternatives(?: considered)?)\s*:?$/i;

/** A section whose items are criteria for the work around it, not work of their own. */
export const CRITERIA_SECTION =
  /^(?:[\d.]+\s*)?(?:acceptance criteria|acceptance tests?|definition of done|success criteria|done when|exit criteria)\s*:?$/i;

/** An identifier a spec gives a requirement: "REQ-12", "FR-3", "US-1.2", "NFR7". */
export const REQUIREMENT_ID =
  /^\s*(?:\*\*|`)?([A-Z][A-Z0-9]{0,9}-?\d+(?:\.\d+)*[a-z]?)(?:\*\*|`)?\s*[:.)\-\u2013\u2014]\s+/;

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

export function phaseFromWords(text: string): Phase | undefined {
  for (const [re, phase] of PHASE_WORDS) if (re.test(text)) return phase;
  return undefined;
}

export function priorityWord(text: string): Priority | undefined {
  for (const [re, p] of PRIORITY_WORDS) if (re.test(text)) return p;
  return undefined;
}

/** A MoSCoW "won't have" marks a requirement that is out of scope for this run. */
export function isWontHave(text: string): boolean {
  return /^\s*(won'?t|will not|wont)(\s+have)?\s*$/i.test(text);
}

/** A marker on an item itself: "P1", "(high)", "[low]". */
export function priorityMarker(text: string): Priority | undefined {
  const marker = /(?:^|[\s([*])(p[0-3])(?=[\s)\]*:.,]|$)|[([](critical|high|medium|low)[)\]]/i.exec(text);
  return marker ? (priorityWord(marker[1] ?? marker[2]!) ?? 'medium') : undefined;
}

export function numericPriority(v: unknown): Priority | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  return v <= 0 ? 'critical' : v <= 1 ? 'high' : v <= 2 ? 'medium' : 'low';
}

/** Cut at a word boundary when one is near, with an ellipsis. */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}

export function collapse(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
