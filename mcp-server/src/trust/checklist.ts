/**
 * The run's checklist (a document): created with the run, edited by the agent, its machine checks run by the
 * server, its held-out items revealed when completion is first claimed. Every change is one audited transaction.
 * Until the reveal the stored record marks no item held out: the set is kept outside the project
 * (trust/held-out.ts) and merged in as the record is read.
 */
import {
  applyEdits,
  countItems,
  markHeldOut,
  visibleItems,
  type Checklist,
  type ChecklistItem,
  type ItemEdit,
} from '../domain/checklist.js';
import type { VerificationFacts } from '../domain/evidence.js';
import { ChecklistError } from '../errors.js';
import type { Project } from '../project.js';
import type { RunState } from '../run/records.js';
import { activeRun, readRun } from '../run/state.js';
import type { Store } from '../store/store.js';
import { keepHeldOut, loadHeldOut } from './held-out.js';
import { runCheck, validateCheck } from './machine-checks.js';
import { CHECKLIST_RECORD, checklistFile } from './records.js';

/** The run's checklist, its held-out items marked (read back from outside the project until the reveal). */
export function readChecklist(store: Store | undefined, runId: string): Checklist | undefined {
  const list = store?.records.read(checklistFile(runId), CHECKLIST_RECORD);
  if (!store || !list || list.revealedAt || !list.heldOutSet?.count) return list;
  const kept = loadHeldOut(store.lokiHome, store.project.root, runId, list.heldOutSet);
  // A lost set hides nothing before the reveal; the reveal then judges every spec item as held out.
  return 'held' in kept ? { ...list, items: markHeldOut(list.items, kept.held) } : list;
}

/** Store the checklist; before the reveal, with no item marked held out (the set is kept elsewhere). */
function writeChecklist(store: Store, list: Checklist): void {
  const stored = !list.revealedAt && list.heldOutSet ? { ...list, items: markHeldOut(list.items, new Set()) } : list;
  store.records.write(checklistFile(list.runId), CHECKLIST_RECORD, stored);
}

/**
 * Written with the run (inside loki_start's transaction), its held-out items drawn then; an existing checklist
 * is kept. Returned with the held-out items marked, for the caller to take them out of the seed tasks.
 */
export function createChecklist(
  store: Store,
  runId: string,
  items: ChecklistItem[],
  now: string,
  env: NodeJS.ProcessEnv,
): Checklist {
  const existing = readChecklist(store, runId);
  if (existing) return existing;
  const { held, ref } = keepHeldOut(
    store.lokiHome,
    store.project.root,
    runId,
    items.map((i) => i.id),
    env,
  );
  const list: Checklist = { runId, items: markHeldOut(items, held), revealedAt: null, updatedAt: now, heldOutSet: ref };
  writeChecklist(store, list);
  return list;
}

export interface ChecklistView {
  runId: string;
  items: ChecklistItem[];
  counts: ReturnType<typeof countItems>;
  /** Set once completion was claimed: from then on held-out items are part of `items`. */
  revealed: boolean;
}

/** What the builder may see of the checklist. */
export function checklistView(list: Checklist): ChecklistView {
  const items = visibleItems(list);
  return { runId: list.runId, items, counts: countItems(items), revealed: list.revealedAt !== null };
}

export function getChecklist(project: Project): ChecklistView {
  const run = activeRunOrCompleted(project);
  const list = readChecklist(project.existingStore(), run.runId) ?? {
    runId: run.runId,
    items: [],
    revealedAt: null,
    updatedAt: run.startedAt,
  };
  return checklistView(list);
}

export async function editChecklist(
  project: Project,
  edits: ItemEdit[],
): Promise<ChecklistView & { changed: string[] }> {
  const config = project.config();
  const run = activeRun(project, 'editing the checklist');
  for (const e of edits) if (e.check) validateCheck(e.check);
  const store = project.openStore();
  return store.mutate(
    () => {
      const list = readChecklist(store, run.runId) ?? {
        runId: run.runId,
        items: [],
        revealedAt: null,
        updatedAt: run.startedAt,
      };
      const { list: next, changed } = applyEdits(list, edits, new Date().toISOString(), config.council.enabled);
      writeChecklist(store, next);
      return { ...checklistView(next), changed };
    },
    (r) => ({ action: 'checklist.edit', target: run.runId, data: { changed: r.changed } }),
  );
}

/**
 * A person's waiver of checklist items (`loki waive item`, trust/waivers.ts), inside the caller's transaction:
 * the same edit an agent's `waive` is (so the same items may be waived: visible ones, never a held-out item the
 * council judges), then each item is stamped with the waiver's id so the receipt shows it as the person's.
 */
export function waiveItemsIn(
  store: Store,
  runId: string,
  ids: readonly string[],
  reason: string,
  waiverId: string,
  councilJudgesHeldOut: boolean,
): Checklist {
  const list = readChecklist(store, runId);
  if (!list || list.items.length === 0) throw new ChecklistError('this run has no checklist items to waive');
  const now = new Date().toISOString();
  let next: Checklist;
  try {
    next = applyEdits(
      list,
      ids.map((id) => ({ id, waive: reason })),
      now,
      councilJudgesHeldOut,
    ).list;
  } catch (err) {
    // "edit 2: ..." numbers the agent's edits; a person named items.
    if (err instanceof ChecklistError) throw new ChecklistError(err.message.replace(/^edit \d+: /, ''));
    throw err;
  }
  next = { ...next, items: next.items.map((i) => (ids.includes(i.id) ? { ...i, waiver: waiverId } : i)) };
  writeChecklist(store, next);
  return next;
}

/** Run every item's machine check and store the results (checks run outside any transaction; results in one). */
export async function evaluateChecklist(
  project: Project,
  runId: string,
  facts: VerificationFacts | null,
): Promise<Checklist | undefined> {
  const store = project.openStore();
  const before = readChecklist(store, runId);
  if (!before || !before.items.some((i) => i.check)) return before;
  const results = new Map<string, ChecklistItem['result']>();
  for (const i of before.items) if (i.check) results.set(i.id, await runCheck(store.project, i.check, facts));
  return store.mutate(
    () => {
      const list = readChecklist(store, runId);
      if (!list) return undefined;
      // An item whose check the agent changed meanwhile keeps its (cleared) result.
      const items = list.items.map((i) => {
        const r = results.get(i.id);
        const was = before.items.find((b) => b.id === i.id);
        return r && i.check && JSON.stringify(i.check) === JSON.stringify(was?.check) ? { ...i, result: r } : i;
      });
      const next = { ...list, items, updatedAt: new Date().toISOString() };
      writeChecklist(store, next);
      return next;
    },
    (l) =>
      l && {
        action: 'checklist.evaluate',
        target: runId,
        data: {
          passed: [...results.values()].filter((r) => r?.ok).length,
          failed: [...results.values()].filter((r) => !r?.ok).length,
        },
      },
  );
}

/** Completion is claimed: held-out items become visible (recorded once, audited). */
export async function revealHeldOut(project: Project, runId: string): Promise<Checklist | undefined> {
  const store = project.openStore();
  const current = readChecklist(store, runId);
  if (!current || current.revealedAt) return current;
  const r = store.mutate(
    () => {
      const list = store.records.read(checklistFile(runId), CHECKLIST_RECORD);
      if (!list || list.revealedAt) return { list, revealed: false };
      const ref = list.heldOutSet;
      const kept = ref ? loadHeldOut(store.lokiHome, store.project.root, runId, ref) : undefined;
      const items = !kept
        ? list.items // a checklist of an older version marks its held-out items itself
        : 'held' in kept
          ? markHeldOut(list.items, kept.held)
          : // Fail closed: with the set unknown, every item the spec gave is judged as held out.
            markHeldOut(list.items, new Set(list.items.filter((i) => i.origin === 'spec').map((i) => i.id)));
      const next: Checklist = {
        ...list,
        items,
        revealedAt: new Date().toISOString(),
        ...(ref && kept && 'lost' in kept ? { heldOutSet: { ...ref, lost: kept.lost } } : {}),
      };
      writeChecklist(store, next);
      return { list: next, revealed: true };
    },
    (r) =>
      r.revealed
        ? {
            action: 'checklist.reveal',
            target: runId,
            data: {
              heldOut: r.list!.items.filter((i) => i.heldOut).map((i) => i.id),
              ...(r.list!.heldOutSet?.lost ? { setLost: r.list!.heldOutSet.lost } : {}),
            },
          }
        : undefined,
  );
  return r.list;
}

/** The checklist can be read whatever state the run is in (a completed run shows what it was judged on). */
function activeRunOrCompleted(project: Project): RunState {
  project.config();
  return readRun(project.existingStore()) ?? activeRun(project, 'reading the checklist');
}
