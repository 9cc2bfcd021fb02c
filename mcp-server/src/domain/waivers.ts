/**
 * Open work and the waivers a person gives for it, pure. Completion means the work was done: every task of the
 * run completed, and the run in the last phase of its tier (completion belongs to that phase; GROWTH follows it
 * once the run is accepted). Anything else blocks completion unless a person waived it, with a reason, from the
 * `loki` CLI (`loki waive`); no MCP tool can. A waiver names the tasks it covers (the ones open when it was
 * given), so work added afterwards is not waived by it.
 */
import { TIER_PHASES, type Phase, type Tier } from './phases.js';
import { effectivePhase, type TaskState } from './tasks.js';
import { UsageError } from '../errors.js';

export const WAIVER_KINDS = ['open-work', 'task', 'phase', 'item'] as const;
export type WaiverKind = (typeof WAIVER_KINDS)[number];

/** A waiver's reason: long enough to say why. */
export const WAIVER_REASON_CHARS = { min: 10, max: 2000 } as const;

/** Every state but completed is work not done: dead-lettered tasks too, unless a person waives them. */
export const NOT_DONE_STATES: readonly TaskState[] = ['pending', 'in-progress', 'failed', 'blocked', 'dead-letter'];

export interface WorkWaiver {
  /** w001, w002, ... within the run. */
  id: string;
  runId: string;
  kind: WaiverKind;
  /** The tasks it covers: every task open when it was given (open-work), or the ones named (task). */
  tasks: string[];
  /** For a phase waiver: the phase the run was in when it was given. */
  phase: Phase | null;
  /**
   * For an item waiver: the checklist items it waives (`loki waive item`). The checklist marks each waived item
   * with this waiver's id, which the receipt shows as a person's waiver.
   */
  items?: string[];
  reason: string;
  at: string;
  /** Always a person at the `loki` CLI: the OS user when known, and the process that recorded it. */
  grantedBy: { kind: 'person'; user: string | null; via: string };
}

export interface WorkTask {
  id: string;
  status: TaskState;
  phase: Phase;
}

export interface WorkFacts {
  tier: Tier;
  phase: Phase;
  /** Every task of the run. */
  tasks: readonly WorkTask[];
  waivers: readonly WorkWaiver[];
}

export interface WorkVerdict {
  /** Tasks not completed, with the waiver that covers each (null: none does). */
  open: { id: string; status: TaskState; waiver: string | null }[];
  /** The phase completion belongs to: the last of the tier. */
  lastPhase: Phase;
  phaseReached: boolean;
  /** The waiver that lets completion happen before the last phase (null: none needed, or none given). */
  phaseWaiver: string | null;
  /** Waivers that excused something (work still open, or the phase not reached): each makes a gap. */
  used: string[];
  reasons: string[];
}

export function lastPhaseOf(tier: Tier): Phase {
  const list = TIER_PHASES[tier];
  return list[list.length - 1]!;
}

/** Ids of the tasks a person waived, each with the first waiver that covers it. */
export function waivedTasks(waivers: readonly WorkWaiver[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const w of waivers) for (const t of w.tasks) if (!out.has(t)) out.set(t, w.id);
  return out;
}

export function judgeWork(f: WorkFacts): WorkVerdict {
  const waived = waivedTasks(f.waivers);
  const open = f.tasks
    .filter((t) => t.status !== 'completed')
    .map((t) => ({ id: t.id, status: t.status, waiver: waived.get(t.id) ?? null }));
  const lastPhase = lastPhaseOf(f.tier);
  const phaseReached = f.phase === lastPhase || f.phase === 'GROWTH';
  const phaseWaiver = phaseReached ? null : (f.waivers.find((w) => w.kind === 'phase')?.id ?? null);
  const reasons: string[] = [];
  const unwaived = open.filter((t) => t.waiver === null);
  if (unwaived.length > 0) reasons.push(openWorkReason(unwaived, f));
  if (!phaseReached && !phaseWaiver) reasons.push(phaseReason(f.tier, f.phase, unwaived.length > 0));
  const used = new Set<string>(open.flatMap((t) => (t.waiver ? [t.waiver] : [])));
  if (phaseWaiver) used.add(phaseWaiver);
  return {
    open,
    lastPhase,
    phaseReached,
    phaseWaiver,
    used: f.waivers.filter((w) => used.has(w.id)).map((w) => w.id),
    reasons,
  };
}

function listIds(tasks: readonly { id: string; status: TaskState }[]): string {
  const shown = tasks.slice(0, 8).map((t) => `${t.id} ${t.status}`);
  return tasks.length > 8 ? `${shown.join(', ')} and ${tasks.length - 8} more` : shown.join(', ');
}

const WAIVE_HINT =
  'or ask a person to waive them with `loki waive task <id> --reason "..."` (`loki waive open-work --reason "..."` for all of them)';

function openWorkReason(open: readonly { id: string; status: TaskState }[], f: WorkFacts): string {
  const has = (s: TaskState) => open.some((t) => t.status === s);
  const list = TIER_PHASES[f.tier];
  const at = list.indexOf(f.phase === 'GROWTH' ? lastPhaseOf(f.tier) : f.phase);
  const later = open.some((t) => {
    const task = f.tasks.find((x) => x.id === t.id);
    return task !== undefined && list.indexOf(effectivePhase(task.phase, f.tier)) > at;
  });
  const how = [
    'Finish them (loki_task_claim, then loki_task_complete)',
    ...(later ? ['tasks of a later phase are handed out once loki_phase_advance reaches it'] : []),
    ...(has('in-progress')
      ? ['a task in progress is finished by the agent holding it, or claimed again once its lease runs out']
      : []),
    ...(has('blocked') ? ['unblock a blocked task with loki_task_update action "unblock"'] : []),
    ...(has('dead-letter') ? ['put a dead-lettered task back with loki_task_update action "retry"'] : []),
  ];
  return `${open.length} task(s) of this run are still open (${listIds(open)}): completion means the work was done. ${how.join('; ')}; ${WAIVE_HINT}`;
}

function phaseReason(tier: Tier, phase: Phase, tasksOpen: boolean): string {
  const last = lastPhaseOf(tier);
  return (
    `the run is in ${phase}, but completion belongs to ${last}, the last phase of the ${tier} tier (${TIER_PHASES[tier].join(' -> ')}): ` +
    `${tasksOpen ? 'finish the open tasks, then ' : ''}move on with loki_phase_advance (its answer names what each phase still needs), ` +
    'or ask a person to waive it with `loki waive phase --reason "..."`'
  );
}

/** What a person asked to waive, checked against the run as it is now; returns the tasks and phase it covers. */
export function planWaiver(
  kind: WaiverKind,
  named: readonly string[],
  reason: string,
  f: WorkFacts,
): { tasks: string[]; phase: Phase | null; reason: string } {
  const why = reason.trim();
  if (why.length < WAIVER_REASON_CHARS.min)
    throw new UsageError(
      `a waiver needs --reason "..." of at least ${WAIVER_REASON_CHARS.min} characters saying why the work need not be done; it is shown in the receipt`,
    );
  if (why.length > WAIVER_REASON_CHARS.max)
    throw new UsageError(`--reason is ${why.length} characters; keep it under ${WAIVER_REASON_CHARS.max}`);
  const verdict = judgeWork(f);
  const unwaived = verdict.open.filter((t) => t.waiver === null);
  switch (kind) {
    case 'open-work':
      if (named.length > 0)
        throw new UsageError(
          '`loki waive open-work` takes no task ids; use `loki waive task <id>...` for some of them',
        );
      if (unwaived.length === 0)
        throw new UsageError(
          verdict.open.length === 0
            ? 'nothing to waive: every task of the run is completed'
            : `nothing to waive: every open task is waived already (${verdict.open.map((t) => `${t.id} by ${t.waiver}`).join(', ')})`,
        );
      return { tasks: unwaived.map((t) => t.id), phase: null, reason: why };
    case 'task': {
      if (named.length === 0) throw new UsageError('usage: loki waive task <id>... --reason "..."');
      const tasks = [...new Set(named)];
      for (const id of tasks) {
        const t = f.tasks.find((x) => x.id === id);
        if (!t) throw new UsageError(`no task "${id}" in this run; \`loki tasks\` lists them`);
        if (t.status === 'completed') throw new UsageError(`${id} is completed: there is nothing to waive`);
        const by = verdict.open.find((o) => o.id === id)?.waiver;
        if (by) throw new UsageError(`${id} is waived already (${by})`);
      }
      return { tasks, phase: null, reason: why };
    }
    case 'phase':
      if (named.length > 0) throw new UsageError('`loki waive phase` takes no arguments but --reason');
      if (verdict.phaseReached)
        throw new UsageError(`nothing to waive: the run is in ${f.phase}, the phase completion belongs to`);
      if (verdict.phaseWaiver) throw new UsageError(`the phase is waived already (${verdict.phaseWaiver})`);
      return { tasks: [], phase: f.phase, reason: why };
    case 'item':
      // Which items may be waived is the checklist's rule (trust/checklist.ts), the same as for the agent's.
      if (named.length === 0) throw new UsageError('usage: loki waive item <id>... --reason "..."');
      return { tasks: [], phase: null, reason: why };
  }
}

/** One line for people: what a waiver covers. */
export function describeWaiver(w: WorkWaiver): string {
  const what =
    w.kind === 'phase'
      ? `completion before the last phase (the run was in ${w.phase ?? '?'})`
      : w.kind === 'item'
        ? `checklist item(s): ${(w.items ?? []).join(', ')}`
        : `${w.kind === 'open-work' ? 'the open work' : 'task(s)'}: ${w.tasks.join(', ')}`;
  const who = `the user ${w.grantedBy.user ?? '(unknown)'} at the loki CLI, ${w.at}`;
  return `${w.id} waives ${what}; given by ${who}: ${w.reason}`;
}
