/**
 * The phase state machine, as data and pure functions. The tier lists live here and nowhere else.
 *
 * A run walks the phases of its tier in order. Moving forward goes to the next phase only, and only when the
 * current phase's exit criteria hold; moving back to an earlier phase of the tier is always allowed (QA found a
 * bug, back to DEVELOPMENT) but needs a reason. GROWTH follows the last phase once the run has completed.
 */
export const PHASES = [
  'BOOTSTRAP',
  'DISCOVERY',
  'ARCHITECTURE',
  'DEEPEN_PLAN',
  'INFRASTRUCTURE',
  'DEVELOPMENT',
  'QA',
  'DEPLOYMENT',
  'GROWTH',
] as const;
export type Phase = (typeof PHASES)[number];

export const TIERS = ['simple', 'standard', 'complex'] as const;
export type Tier = (typeof TIERS)[number];

export const TIER_PHASES: Readonly<Record<Tier, readonly Phase[]>> = {
  simple: ['BOOTSTRAP', 'DEVELOPMENT', 'QA'],
  standard: ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN', 'DEVELOPMENT', 'QA'],
  complex: [
    'BOOTSTRAP',
    'DISCOVERY',
    'ARCHITECTURE',
    'DEEPEN_PLAN',
    'INFRASTRUCTURE',
    'DEVELOPMENT',
    'QA',
    'DEPLOYMENT',
  ],
};

export const PHASE_PURPOSE: Readonly<Record<Phase, string>> = {
  BOOTSTRAP: 'read the spec, set up the repository and tooling, seed the task queue',
  DISCOVERY: 'turn the spec into concrete requirements, open questions decided, acceptance criteria',
  ARCHITECTURE: 'choose the structure, data model, interfaces and stack; record the decisions',
  DEEPEN_PLAN: 'research the risky parts and refine the tasks before building',
  INFRASTRUCTURE: 'environments, CI, deployment scaffolding, external integrations',
  DEVELOPMENT: 'build the features task by task, with tests',
  QA: 'verify: tests, build and lint pass; checklist items met; fix what fails',
  DEPLOYMENT: 'ship: release artefacts, deployment, smoke checks',
  GROWTH: 'continuous improvement after the run completed',
};

/** What the server knows about the run when judging a transition. Gathered by I/O code, judged here. */
export interface PhaseFacts {
  specRecorded: boolean;
  gitRepository: boolean;
  /** Files changed since the run's git baseline (excluding .loki/); null when it cannot be known. */
  changedFilesSinceBaseline: number | null;
  runCompleted: boolean;
  /** Open tasks (pending, in progress, failed, blocked) that belong to the current phase, by id. */
  openTasksInPhase: readonly string[];
}

export interface ExitCriterion {
  id: string;
  description: string;
  /** Returns undefined when it holds, else the reason it does not. */
  check(facts: PhaseFacts): string | undefined;
}

const specRecorded: ExitCriterion = {
  id: 'spec-recorded',
  description: 'the run has a spec (loki_start with spec or specText)',
  check: (f) =>
    f.specRecorded ? undefined : 'no spec is recorded for this run: call loki_start with `spec` (a path) or `specText`',
};

const codeChanged: ExitCriterion = {
  id: 'code-changed',
  description: 'the working tree differs from the run baseline (outside .loki/)',
  check: (f) => {
    if (!f.gitRepository || f.changedFilesSinceBaseline === null) return undefined; // cannot be known: not a gate
    return f.changedFilesSinceBaseline > 0
      ? undefined
      : 'no file has changed since the run started: build something before leaving DEVELOPMENT';
  },
};

const phaseTasksDone: ExitCriterion = {
  id: 'phase-tasks-done',
  description: 'every task of the phase is completed (or dead-lettered)',
  check: (f) => {
    const open = f.openTasksInPhase;
    if (open.length === 0) return undefined;
    const ids = open.length > 8 ? `${open.slice(0, 8).join(', ')} and ${open.length - 8} more` : open.join(', ');
    return `${open.length} task(s) of this phase are still open (${ids}): finish them (loki_task_claim), move them with loki_task_update, or ask a person to waive them (\`loki waive task <id> --reason "..."\`)`;
  },
};

const runCompleted: ExitCriterion = {
  id: 'run-completed',
  description: 'the run was accepted by loki_complete',
  check: (f) => (f.runCompleted ? undefined : 'GROWTH starts after the run is completed: call loki_complete first'),
};

/** Exit criteria per phase. Later subsystems (queue, verification) add theirs here. */
export const EXIT_CRITERIA: Readonly<Record<Phase, readonly ExitCriterion[]>> = {
  BOOTSTRAP: [specRecorded, phaseTasksDone],
  DISCOVERY: [phaseTasksDone],
  ARCHITECTURE: [phaseTasksDone],
  DEEPEN_PLAN: [phaseTasksDone],
  INFRASTRUCTURE: [phaseTasksDone],
  DEVELOPMENT: [codeChanged, phaseTasksDone],
  QA: [phaseTasksDone],
  DEPLOYMENT: [phaseTasksDone],
  GROWTH: [],
};

/** Criteria that must hold to *enter* a phase. */
export const ENTRY_CRITERIA: Readonly<Partial<Record<Phase, readonly ExitCriterion[]>>> = {
  GROWTH: [runCompleted],
};

export function nextPhase(tier: Tier, current: Phase): Phase | undefined {
  const list = TIER_PHASES[tier];
  const i = list.indexOf(current);
  if (current === 'GROWTH') return undefined;
  if (i < 0) return list[0];
  return i === list.length - 1 ? 'GROWTH' : list[i + 1];
}

export type TransitionPlan =
  | { ok: true; from: Phase; to: Phase; direction: 'forward' | 'back' }
  | { ok: false; from: Phase; to: Phase | undefined; reasons: string[] };

/**
 * Decide whether the run may move from `current` to `target` (default: the next phase of the tier).
 */
export function planTransition(
  tier: Tier,
  current: Phase,
  target: Phase | undefined,
  facts: PhaseFacts,
  reason?: string,
): TransitionPlan {
  const list = TIER_PHASES[tier];
  const next = nextPhase(tier, current);
  const to = target ?? next;
  if (to === undefined) {
    return { ok: false, from: current, to, reasons: ['GROWTH is the last phase; there is nothing to advance to'] };
  }
  if (to === current) return { ok: false, from: current, to, reasons: [`the run is already in ${current}`] };

  const inTier = (p: Phase) => p === 'GROWTH' || list.includes(p);
  if (!inTier(to)) {
    return {
      ok: false,
      from: current,
      to,
      reasons: [`${to} is not a phase of the ${tier} tier (${list.join(' -> ')})`],
    };
  }
  const order = (p: Phase) => (p === 'GROWTH' ? list.length : list.indexOf(p));
  if (order(to) < order(current)) {
    if (!reason || reason.trim() === '') {
      return {
        ok: false,
        from: current,
        to,
        reasons: [`going back from ${current} to ${to} needs a \`reason\` (what sent you back)`],
      };
    }
    return { ok: true, from: current, to, direction: 'back' };
  }
  if (to !== next) {
    return {
      ok: false,
      from: current,
      to,
      reasons: [`phases cannot be skipped: the next phase after ${current} is ${next}`],
    };
  }
  const reasons = [...EXIT_CRITERIA[current], ...(ENTRY_CRITERIA[to] ?? [])]
    .map((c) => c.check(facts))
    .filter((r): r is string => r !== undefined);
  return reasons.length > 0
    ? { ok: false, from: current, to, reasons }
    : { ok: true, from: current, to, direction: 'forward' };
}
