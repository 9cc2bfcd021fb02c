/**
 * The completion checklist, pure: items derived from the spec, the held-out selection, the agent's edits, and
 * each item's verdict at completion. No I/O: the caller passes the facts (machine check results, council item
 * verdicts) in.
 *
 * - Items come from the seed tasks (domain/spec-tasks.ts reads every requirement of the spec into one, its
 *   must/should/shall sentences included): each acceptance criterion is an item (`c-<8 hex>`); a requirement
 *   stated with no criteria is one item itself (`r-<8 hex>`), so every requirement is on the checklist. Ids are
 *   content hashes, so the same spec gives the same ids and a reworded item is a new one.
 * - Held-out items: for N >= 4 criteria (`c-` items), clamp(round(N / 4), 1, 5) of them, the first by
 *   sha256(salt + id) order for a salt drawn at random for the run. A requirement item (`r-`) is never held out:
 *   it is the task's own title, which the builder must read to know what to build. They are chosen once, at run start, kept outside the project until
 *   completion is claimed (trust/held-out.ts), withheld from every output (and stripped from the seed tasks) until
 *   then, and judged then: by their machine check, or else by the council.
 * - A machine check is one of five typed kinds; an item with a check is met only when the check passes (the
 *   agent cannot mark it met). An item without a check is met on the agent's word with evidence (an
 *   assessment, shown as such in the receipt), or waived with a reason.
 */
import crypto from 'node:crypto';
import type { TaskDraft } from './tasks.js';

export const CHECK_KINDS = ['file-exists', 'file-contains', 'command', 'tests-pass', 'http'] as const;

/** Sizes of a machine check's fields, for the record schema (trust/records.ts) and the tool input (tools/trust.ts). */
export const CHECK_LIMITS = { path: 500, text: 2000, url: 2000, contains: 2000 } as const;
/** The HTTP statuses an `http` check may expect. */
export const HTTP_STATUS = { min: 100, max: 599 } as const;
export type CheckKind = (typeof CHECK_KINDS)[number];

export type MachineCheck =
  | { kind: 'file-exists'; path: string }
  | { kind: 'file-contains'; path: string; text: string }
  /** One of the project's configured checks (test, build, lint), as run by loki_verify. */
  | { kind: 'command'; check: 'test' | 'build' | 'lint' }
  | { kind: 'tests-pass' }
  /** Loopback only. */
  | { kind: 'http'; url: string; status: number; contains?: string | undefined };

export type ItemStatus = 'open' | 'met' | 'waived';

export interface CheckResult {
  ok: boolean;
  detail: string;
  at: string;
}

export interface ChecklistItem {
  id: string;
  text: string;
  /** Where it came from: the spec section or task, or "agent". */
  source: string;
  origin: 'spec' | 'agent';
  check: MachineCheck | null;
  /** The check was stated by the spec: it cannot be changed or removed. */
  checkFromSpec: boolean;
  status: ItemStatus;
  /** The agent's evidence for `met` (an assessment), or the waiver's reason. */
  note: string | null;
  /** The last time the server ran this item's check. */
  result: CheckResult | null;
  heldOut: boolean;
  updatedAt: string;
  /**
   * The person's waiver (`loki waive item`, an id of trust/waivers.ts) when a person waived it; gone once the item
   * is marked, opened or waived again, so the receipt never credits a person with the agent's word.
   */
  waiver?: string;
}

export interface Checklist {
  runId: string;
  items: ChecklistItem[];
  /** When completion was first claimed: held-out items are visible from then on. */
  revealedAt: string | null;
  updatedAt: string;
  /**
   * The held-out set, kept outside the project until the reveal (trust/held-out.ts): its salted digest, which
   * binds the set into the audit chain with this record without naming it, and its size. `lost` says why the set
   * could not be used at the reveal; every spec item was then judged as held out.
   */
  heldOutSet?: HeldOutSetRef;
}

export interface HeldOutSetRef {
  digest: string;
  count: number;
  /** Chosen from LOKI_HELD_OUT_SEED, not at random: predictable, and the receipt says so. */
  seeded?: boolean;
  lost?: string;
}

export const MAX_ITEMS = 200;
export const ITEM_TEXT_CHARS = 500;
/** An agent's criterion shorter than this is noise ("-", "ok"). */
export const ITEM_TEXT_MIN_CHARS = 3;
const MIN_NOTE_CHARS = 10;

import { ChecklistError } from '../errors.js';

/**
 * Spec criteria are `c-<hash>`, spec requirements without criteria `r-<hash>`, agent-added items `a-<hash>`: an
 * agent's item can never collide with a hidden one.
 */
export function itemId(text: string, prefix: 'c' | 'r' | 'a' = 'c'): string {
  return `${prefix}-${crypto.createHash('sha256').update(normalise(text)).digest('hex').slice(0, 8)}`;
}

/** How many of N items are held out: none below 4, else a quarter of them rounded, between 1 and 5. */
export function heldOutCount(n: number): number {
  if (n < 4) return 0;
  return Math.min(5, Math.max(1, Math.round(n / 4)));
}

/**
 * The held-out ids: the first `heldOutCount` ids in sha256(salt + id) order, returned sorted. The salt is drawn
 * at random for each run, so which items are held out cannot be worked out from the spec.
 */
export function selectHeldOut(ids: readonly string[], salt: string): string[] {
  const sha = (id: string) => crypto.createHash('sha256').update(salt).update(id).digest('hex');
  // A requirement item is its task's title: holding it out would hide the work itself from the builder.
  const eligible = ids.filter((id) => !id.startsWith('r-'));
  return eligible
    .sort((a, b) => (sha(a) < sha(b) ? -1 : sha(a) > sha(b) ? 1 : 0))
    .slice(0, heldOutCount(eligible.length))
    .sort();
}

/**
 * The items a spec gives, from its seed tasks: each task's acceptance criteria, or the requirement itself when it
 * states none, de-duplicated (none held out yet). The spec's must/should sentences are tasks or criteria already.
 */
export function itemsFromSpec(tasks: readonly TaskDraft[], now: string): ChecklistItem[] {
  const items: ChecklistItem[] = [];
  const seen = new Set<string>();
  const add = (text: string, source: string, prefix: 'c' | 'r') => {
    const clean = clip(text.replace(/\s+/g, ' ').trim());
    // A criterion shorter than ITEM_TEXT_MIN_CHARS is noise; a requirement is kept whatever its length.
    if (clean.length < (prefix === 'r' ? 1 : ITEM_TEXT_MIN_CHARS) || items.length >= MAX_ITEMS) return;
    const id = itemId(clean, prefix);
    if (seen.has(id)) return;
    seen.add(id);
    const check = inferCheck(clean);
    items.push({
      id,
      text: clean,
      source,
      origin: 'spec',
      check,
      checkFromSpec: check !== null,
      status: 'open',
      note: null,
      result: null,
      heldOut: false,
      updatedAt: now,
    });
  };
  for (const t of tasks) {
    const source = t.id ? `task ${t.id}${t.source?.section ? ` (${t.source.section})` : ''}` : 'spec';
    const criteria = (t.acceptance ?? []).filter((a) => a.trim().length >= 3);
    if (criteria.length > 0) for (const a of criteria) add(a, source, 'c');
    else add(requirementText(t), source, 'r');
  }
  return items;
}

/** A requirement as an item: its title, with a short description when it has one (the council reads this). */
function requirementText(t: TaskDraft): string {
  const d = t.description?.trim() ?? '';
  return d !== '' && d.length <= 300 && !d.startsWith(t.title) ? `${t.title}: ${d}` : t.title;
}

/** `items` with exactly the ids of `held` marked held out. */
export function markHeldOut(items: readonly ChecklistItem[], held: ReadonlySet<string>): ChecklistItem[] {
  return items.map((i) => (i.heldOut === held.has(i.id) ? i : { ...i, heldOut: held.has(i.id) }));
}

/**
 * Checks a sentence states plainly: "`x` exists", "`x` must contain `y`", "tests pass", "the build succeeds",
 * "GET http://localhost:3000/ returns 200". A requirement may say it with a modal ("`x` must exist").
 */
export function inferCheck(text: string): MachineCheck | null {
  const t = text.trim().replace(/[.;]$/, '');
  const contains =
    new RegExp(
      String.raw`\`([^\`\s]+)\`\s+${MODAL_VERB}(?:contains|includes|mentions|contain|include|mention)\s+\`([^\`]+)\``,
      'i',
    ).exec(t) ??
    new RegExp(
      `^(${PATH_WORD})\\s+${MODAL_VERB}(?:contains|includes|mentions|contain|include|mention)\\s+["']?(.+?)["']?$`,
      'i',
    ).exec(t);
  if (contains && isRelativePath(contains[1]!))
    return { kind: 'file-contains', path: contains[1]!, text: contains[2]! };
  const exists =
    new RegExp(
      String.raw`\`([^\`\s]+)\`\s+(?:exists|is present|is created|${MODAL_VERB}(?:exist|be present|be created))\b`,
      'i',
    ).exec(t) ??
    new RegExp(
      `^(${PATH_WORD})\\s+(?:exists|is present|is created|${MODAL_VERB}(?:exist|be present|be created))$`,
      'i',
    ).exec(t) ??
    /\b(?:create|add|provide|ship|write)s?\s+(?:an?\s+|the\s+)?(?:file\s+)?`([^`\s]+\.[A-Za-z0-9]+)`/i.exec(t);
  if (exists && isRelativePath(exists[1]!)) return { kind: 'file-exists', path: exists[1]! };
  const http = new RegExp(
    String.raw`\bGET\s+\`?(https?:\/\/(?:localhost|127\.0\.0\.1|\[::1\])(?::\d+)?[^\s\`]*)\`?\s+${MODAL_VERB}(?:returns|responds(?:\s+with)?|answers|return|respond(?:\s+with)?|answer)\s+(?:(?:an?\s+)?(?:HTTP\s+|status\s+)?)?(\d{3})\b`,
    'i',
  ).exec(t);
  if (http) return { kind: 'http', url: http[1]!, status: Number(http[2]) };
  if (
    /\b(?:all\s+(?:the\s+)?)?(?:unit\s+)?tests\s+(?:pass|are green|succeed|must pass|should pass|shall pass)\b/i.test(
      t,
    ) ||
    /`(?:npm|pnpm|yarn|bun) (?:run )?test`\s+(?:passes|succeeds|must pass|should pass)\b/i.test(t)
  )
    return { kind: 'tests-pass' };
  if (/^(?:the\s+)?(?:project\s+)?build\s+(?:passes|succeeds|must pass|must succeed|should succeed)\b/i.test(t))
    return { kind: 'command', check: 'build' };
  if (/^(?:the\s+)?(?:lint|linter|linting)\s+(?:passes|is clean|must pass|should pass|reports no errors)\b/i.test(t))
    return { kind: 'command', check: 'lint' };
  return null;
}

/** "must " / "should " / "shall " / "will " before a verb, or nothing. */
const MODAL_VERB = String.raw`(?:(?:must|should|shall|will)\s+)?`;

/** A bare relative file path: "src/app.js", "README.md" (a dot extension or a slash). */
const PATH_WORD = String.raw`[\w.-]+\/[\w./-]+|[\w-]+\.[A-Za-z0-9]{1,8}`;

function isRelativePath(p: string): boolean {
  return !p.startsWith('/') && !p.split(/[\\/]/).includes('..') && !/^[a-z]+:/i.test(p) && p.length <= 500;
}

/** Remove held-out item texts from the seed tasks, so queue outputs never show them before completion. */
export function withoutHeldOut(tasks: readonly TaskDraft[], items: readonly ChecklistItem[]): TaskDraft[] {
  const hidden = items.filter((i) => i.heldOut);
  if (hidden.length === 0) return [...tasks];
  const hiddenIds = new Set(hidden.map((i) => i.id));
  const strip = (s: string) => hidden.reduce((acc, i) => removeSentence(acc, i.text), s);
  return tasks.map((t) => ({
    ...t,
    ...(t.acceptance
      ? {
          acceptance: t.acceptance
            .filter((a) => !hiddenIds.has(itemId(clip(a.replace(/\s+/g, ' ').trim()))))
            .map(strip),
        }
      : {}),
    ...(t.description !== undefined ? { description: strip(t.description) } : {}),
    title: strip(t.title) || 'Requirement from the spec',
  }));
}

/** Text without emphasis or code marks, spaces collapsed: how a sentence is compared wherever it appears. */
function plain(s: string): string {
  return s.replace(/[*_`]/g, '').replace(/\s+/g, ' ').trim();
}

function removeSentence(haystack: string, sentence: string): string {
  const flat = plain(haystack);
  const needle = plain(sentence);
  const at = needle ? flat.indexOf(needle) : -1;
  if (at < 0) return haystack;
  return `${flat.slice(0, at)}${flat.slice(at + needle.length)}`.replace(/\s{2,}/g, ' ').trim();
}

/** What the builder may see: held-out items only once completion has been claimed. */
export function visibleItems(list: Checklist): ChecklistItem[] {
  return list.revealedAt ? list.items : list.items.filter((i) => !i.heldOut);
}

export interface ItemEdit {
  id?: string | undefined;
  text?: string | undefined;
  check?: MachineCheck | null | undefined;
  status?: 'open' | 'met' | undefined;
  evidence?: string | undefined;
  waive?: string | undefined;
  remove?: boolean | undefined;
}

/** Apply the agent's edits; every edit is checked before any applies, so a bad one changes nothing. */
export function applyEdits(
  list: Checklist,
  edits: readonly ItemEdit[],
  now: string,
  councilJudgesHeldOut = true,
): { list: Checklist; changed: string[] } {
  const items = list.items.map((i) => ({ ...i }));
  const byId = new Map(items.map((i) => [i.id, i]));
  const visible = (id: string) => {
    const i = byId.get(id);
    return i && (!i.heldOut || list.revealedAt) ? i : undefined;
  };
  const changed: string[] = [];
  const removed = new Set<string>();
  edits.forEach((e, n) => {
    const where = `edit ${n + 1}`;
    if (e.id === undefined) {
      if (!e.text)
        throw new ChecklistError(
          `${where}: a new item needs \`text\` (or give the \`id\` of an existing item to change it)`,
        );
      const id = itemId(e.text, 'a');
      if (byId.has(id))
        throw new ChecklistError(`${where}: you already added an item with this text (${id}); edit it by id`);
      if (items.filter((i) => visible(i.id)).length >= MAX_ITEMS)
        throw new ChecklistError(
          `${where}: the checklist is full (${MAX_ITEMS} items); merge or remove agent items first`,
        );
      const item: ChecklistItem = {
        id,
        text: clip(e.text.trim()),
        source: 'agent',
        origin: 'agent',
        check: null,
        checkFromSpec: false,
        status: 'open',
        note: null,
        result: null,
        heldOut: false,
        updatedAt: now,
      };
      items.push(item);
      byId.set(id, item);
      applyOne(item, { ...e, text: undefined }, where, now);
      changed.push(id);
      return;
    }
    const item = visible(e.id);
    if (!item || removed.has(e.id))
      throw new ChecklistError(`${where}: no checklist item "${e.id}" (loki_checklist_get lists them)`);
    if (item.heldOut && councilJudgesHeldOut) {
      throw new ChecklistError(
        `${where}: ${item.id} is a held-out item: its spec check or the council judges it, so it cannot be edited, marked or waived`,
      );
    }
    if (e.remove) {
      if (item.origin === 'spec')
        throw new ChecklistError(
          `${where}: ${item.id} comes from the spec and cannot be removed; waive it with a reason instead (\`waive\`)`,
        );
      removed.add(item.id);
      changed.push(item.id);
      return;
    }
    if (e.text !== undefined) {
      if (item.origin === 'spec')
        throw new ChecklistError(
          `${where}: ${item.id} comes from the spec; its text cannot change (add a new item, or waive this one with a reason)`,
        );
      item.text = clip(e.text.trim());
    }
    applyOne(item, e, where, now);
    changed.push(item.id);
  });
  return {
    list: { ...list, items: items.filter((i) => !removed.has(i.id)), updatedAt: now },
    changed: [...new Set(changed)],
  };
}

function applyOne(item: ChecklistItem, e: ItemEdit, where: string, now: string): void {
  if (e.waive !== undefined || e.status !== undefined) delete item.waiver;
  if (e.check !== undefined) {
    if (item.checkFromSpec)
      throw new ChecklistError(
        `${where}: the ${item.check?.kind} check of ${item.id} comes from the spec and cannot be changed or removed`,
      );
    item.check = e.check;
    item.result = null;
    if (item.status === 'met') item.status = 'open';
  }
  if (e.waive !== undefined) {
    if (e.waive.trim().length < MIN_NOTE_CHARS)
      throw new ChecklistError(
        `${where}: a waiver needs a reason of at least ${MIN_NOTE_CHARS} characters (it is shown in the receipt)`,
      );
    if (e.status === 'met') throw new ChecklistError(`${where}: give either \`waive\` or \`status: "met"\`, not both`);
    item.status = 'waived';
    item.note = e.waive.trim();
  } else if (e.status === 'met') {
    if (item.check)
      throw new ChecklistError(
        `${where}: ${item.id} has a ${item.check.kind} check, so it is met only when loki_verify finds the check passing`,
      );
    if (!e.evidence || e.evidence.trim().length < MIN_NOTE_CHARS)
      throw new ChecklistError(
        `${where}: marking ${item.id} met needs \`evidence\` of at least ${MIN_NOTE_CHARS} characters (what shows it holds)`,
      );
    item.status = 'met';
    item.note = e.evidence.trim();
  } else if (e.status === 'open') {
    item.status = 'open';
    item.note = null;
  } else if (e.evidence !== undefined) {
    throw new ChecklistError(`${where}: \`evidence\` goes with \`status: "met"\``);
  }
  item.updatedAt = now;
}

export type Verdict =
  { ok: true; how: 'check' | 'agent' | 'council' | 'waived'; detail: string } | { ok: false; reason: string };

/**
 * An item's verdict at completion. For a held-out item judged by the council, `councilMet` is how many votes of
 * the tallied council found it met (null: no tallied council yet); undefined means the item is judged like any
 * other (not held out, or the council is disabled). `threshold` is the approvals the council needs.
 */
export function itemVerdict(item: ChecklistItem, councilMet: number | null | undefined, threshold: number): Verdict {
  const label = `${item.heldOut ? 'held-out item' : 'checklist item'} ${item.id} "${shorten(item.text)}"`;
  if (item.status === 'waived') return { ok: true, how: 'waived', detail: `waived: ${item.note ?? ''}` };
  if (item.check) {
    if (!item.result)
      return { ok: false, reason: `${label} has a ${item.check.kind} check that has not run: call loki_verify` };
    return item.result.ok
      ? { ok: true, how: 'check', detail: item.result.detail }
      : { ok: false, reason: `${label} fails its ${item.check.kind} check: ${item.result.detail}` };
  }
  if (item.heldOut && councilMet !== undefined) {
    if (councilMet === null)
      return {
        ok: false,
        reason: `${label} has no machine check and no council has judged it yet: convene the council (loki_council_convene)`,
      };
    return councilMet >= threshold
      ? { ok: true, how: 'council', detail: `${councilMet} council member(s) found it met` }
      : {
          ok: false,
          reason: `${label} was found met by only ${councilMet} council member(s) (needs ${threshold}): do the work, loki_verify, and convene again`,
        };
  }
  if (item.status === 'met') return { ok: true, how: 'agent', detail: `marked met: ${item.note ?? ''}` };
  return {
    ok: false,
    reason: `${label} is not met: do it and mark it met with evidence (loki_checklist_set), add a machine check, or waive it with a reason`,
  };
}

export function countItems(items: readonly ChecklistItem[]): {
  total: number;
  met: number;
  open: number;
  waived: number;
  failing: number;
  withChecks: number;
} {
  const c = { total: items.length, met: 0, open: 0, waived: 0, failing: 0, withChecks: 0 };
  for (const i of items) {
    if (i.check) c.withChecks++;
    if (i.status === 'waived') c.waived++;
    else if (i.check ? i.result?.ok : i.status === 'met') c.met++;
    else if (i.check && i.result && !i.result.ok) c.failing++;
    else c.open++;
  }
  return c;
}

function normalise(text: string): string {
  return text.replace(/\s+/g, ' ').trim().toLowerCase();
}

function clip(s: string): string {
  return s.length <= ITEM_TEXT_CHARS ? s : `${s.slice(0, ITEM_TEXT_CHARS - 1)}…`;
}

function shorten(s: string): string {
  return s.length <= 80 ? s : `${s.slice(0, 79)}…`;
}
