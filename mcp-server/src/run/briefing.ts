/** loki_status: the per-turn briefing, which also counts the turn, heartbeats and delivers HUMAN_INPUT. */
import { PHASE_PURPOSE, TIER_PHASES, nextPhase, type Phase, type Tier } from '../domain/phases.js';
import type { StateCounts } from '../domain/tasks.js';
import type { Project } from '../project.js';
import { RUN_FILE, RUN_RECORD, SESSION_RECORD, sessionFile, sessionLiveness, type RunState } from './records.js';
import { heartbeat, type SessionIdentity } from './sessions.js';
import { HUMAN_INPUT, HUMAN_INPUT_IGNORED, type HumanInput, readMarkers, takeHumanInput } from './signals.js';
import { readRun } from './state.js';
import { trustBriefing, type TrustBriefing } from '../trust/briefing.js';
import { workFacts } from '../trust/waivers.js';
import { judgeWork } from '../domain/waivers.js';
import { readHookState } from './hook-state.js';

export interface Briefing {
  project: string;
  run: {
    runId: string;
    status: RunState['status'];
    phase: Phase;
    phases: readonly Phase[];
    nextPhase: Phase | null;
    tier: Tier;
    iteration: number;
    maxIterations: number;
    startedAt: string;
    spec: { path: string | null; title: string | null; copy: string } | null;
    baseline: string | null;
  } | null;
  session: { id: string; status: 'running' | 'stale' | 'stopped' } | null;
  signals: { pause: boolean; stop: boolean; humanInput: HumanInput };
  budget: { limitUsd: number | null; spentUsd: number | null; note: string };
  queue: QueueBriefing | null;
  trust: TrustBriefing | null;
  problems: string[];
  next: string;
}

export interface QueueBriefing {
  counts: StateCounts;
  total: number;
  /** Tasks this session's agent holds (subagents with their own agent ids show under `inProgress`). */
  mine: { id: string; title: string; expiresAt: string; expired: boolean }[];
  inProgress: number;
  next: { id: string; title: string; priority: string; phase: Phase } | null;
  /** Open tasks of the current phase: the phase cannot end while this is above 0. */
  openInPhase: number;
  laterPhases: number;
  waiting: number;
}

export interface StatusOptions {
  /** Do not count a turn, heartbeat, or take HUMAN_INPUT (read-only look). */
  peek: boolean;
}

/** The per-turn briefing. Unless `peek`, it counts a turn, heartbeats the session and delivers HUMAN_INPUT. */
export async function briefing(
  project: Project,
  who: SessionIdentity | undefined,
  opts: StatusOptions,
): Promise<Briefing> {
  const effective = project.effectiveConfig();
  const problems = [...effective.problems];
  const config = effective.problems.length === 0 ? project.config() : undefined;
  const maxIterations = (effective.values.get('limits.maxIterations') as number) ?? 1000;
  const store = project.existingStore();
  const markers = readMarkers(store);
  let humanInput: HumanInput = { status: 'none' };
  let run = readRun(store);
  let session: Briefing['session'] = null;

  if (store && run && run.status === 'active' && !opts.peek) {
    const turn = await store.mutate(
      () => {
        const current = readRun(store);
        if (!current || current.status !== 'active') return { run: current, changed: false as const };
        const now = new Date().toISOString();
        let next: RunState = { ...current, iteration: current.iteration + 1, updatedAt: now };
        if (markers.stop) next = { ...next, status: 'stopped', stoppedAt: now, stopReason: 'STOP signal' };
        else if (next.iteration > maxIterations)
          next = {
            ...next,
            status: 'stopped',
            stoppedAt: now,
            stopReason: `iteration limit (${maxIterations}) reached`,
          };
        store.records.write(RUN_FILE, RUN_RECORD, next);
        return { run: next, changed: true as const };
      },
      (r) =>
        r.changed && r.run
          ? r.run.status === 'stopped'
            ? {
                action: 'run.stop',
                target: r.run.runId,
                data: { reason: r.run.stopReason, iteration: r.run.iteration },
              }
            : {
                action: 'run.turn',
                target: r.run.runId,
                data: { iteration: r.run.iteration, session: who?.id ?? null },
              }
          : undefined,
    );
    run = turn.run;
    if (who && run) session = { id: who.id, status: heartbeat(store, run.runId, who) };
    if (config && store.exists(HUMAN_INPUT)) {
      humanInput = await store.mutate(
        () => takeHumanInput(store, config.promptInjection, config.humanInputMaxBytes),
        (h) =>
          h.status === 'delivered' || h.status === 'rejected'
            ? {
                action: `human-input.${h.status}`,
                data:
                  h.status === 'delivered'
                    ? { archivedAs: h.archivedAs, bytes: Buffer.byteLength(h.text) }
                    : { reason: h.reason },
              }
            : undefined,
      );
    }
  } else if (store && who) {
    const s = store.records.read(sessionFile(who.id), SESSION_RECORD);
    if (s) session = { id: s.id, status: sessionLiveness(s) };
  }
  if (humanInput.status === 'none' && store && store.exists(HUMAN_INPUT) && !(config?.promptInjection ?? false)) {
    humanInput = { status: 'ignored', reason: HUMAN_INPUT_IGNORED };
  }

  let queue: QueueBriefing | null = null;
  if (store && run) {
    const tasks = project.tasks();
    if (who && !opts.peek && run.status === 'active') await tasks.renewHeldBy(who.id);
    const q = tasks.summary(run);
    const me = who?.id;
    queue = {
      counts: q.counts,
      total: q.total,
      mine: q.inProgress
        .filter((t) => t.agent === me)
        .map(({ id, title, expiresAt, expired }) => ({ id, title, expiresAt, expired })),
      inProgress: q.inProgress.length,
      next: q.next,
      openInPhase: q.openInPhase,
      laterPhases: q.laterPhases,
      waiting: q.waiting,
    };
    if (q.counts['dead-letter'] > 0)
      problems.push(
        `${q.counts['dead-letter']} task(s) in dead-letter: review them (loki_task_list status ["dead-letter"]); retry with loki_task_update action "retry" once the cause is fixed`,
      );
    if (q.stuckOnDeadLetter.length > 0)
      problems.push(`${q.stuckOnDeadLetter.slice(0, 5).join(', ')} wait on dead-lettered tasks and cannot start`);
  }

  let trust: TrustBriefing | null = null;
  if (store && run) {
    trust = await trustBriefing(project, run, config, !opts.peek);
    if (trust.stagnated) run = readRun(store) ?? run;
    if (trust.forcedReview)
      problems.push(`forced review (${trust.forcedReview}): call loki_verify, then loki_council_convene`);
    for (const f of trust.findings) problems.push(`completion refused: ${f}`);
  }

  // What the Claude Code hooks measured (spend, context size) and the notices they raised.
  const hooks = store && run ? readHookState(store, run.runId) : null;
  if (hooks) problems.push(...hooks.notices);
  if (queue && queue.counts.failed > 0)
    problems.push(
      `${queue.counts.failed} task(s) failed and wait to be retried: loki_task_list status ["failed"] shows their errors`,
    );

  const limit = (effective.values.get('budget.limitUsd') as number | null) ?? null;
  const b: Briefing = {
    project: project.root,
    run: run
      ? {
          runId: run.runId,
          status: run.status,
          phase: run.phase,
          phases: TIER_PHASES[run.tier],
          nextPhase: nextPhase(run.tier, run.phase) ?? null,
          tier: run.tier,
          iteration: run.iteration,
          maxIterations,
          startedAt: run.startedAt,
          spec: run.spec && { path: run.spec.path, title: run.spec.title, copy: `.loki/${run.spec.copy}` },
          baseline: run.git.baselineCommit,
        }
      : null,
    session,
    signals: { ...markers, humanInput },
    budget: {
      limitUsd: limit,
      spentUsd: hooks && hooks.toolCalls > 0 ? Number(hooks.usage.costUsd.toFixed(4)) : null,
      note:
        hooks && hooks.toolCalls > 0
          ? `measured by the Claude Code hooks from the host transcript (${hooks.usage.contextTokens} tokens in context)`
          : limit === null
            ? 'no budget limit set'
            : 'spend is measured by the Claude Code hooks from the host transcript',
    },
    queue,
    trust,
    problems,
    next: '',
  };
  b.next = nextHint(b, run, run && queue && onLastPhaseWithoutWork(run, queue) ? workLeft(project, run) : []);
  return b;
}

/** The last phase of the tier with nothing open in it: where `next` would name loki_complete. */
function onLastPhaseWithoutWork(run: RunState, q: QueueBriefing): boolean {
  return TIER_PHASES[run.tier].at(-1) === run.phase && q.openInPhase === 0;
}

/**
 * Tasks of the run completion would still call open (domain/waivers.ts judgeWork: dead-lettered ones, or open in
 * another phase), unwaived; read only where `next` would otherwise lead into that refusal.
 */
function workLeft(project: Project, run: RunState): string[] {
  return judgeWork(workFacts(project, run))
    .open.filter((t) => t.waiver === null)
    .map((t) => `${t.id} ${t.status}`);
}

/**
 * One instruction for the agent's next step. Pure over the briefing and `workLeft` (tasks completion would still
 * refuse on, when the run is in its last phase with nothing open there).
 */
export function nextHint(b: Briefing, run: RunState | undefined, workLeft: readonly string[] = []): string {
  if (
    b.problems.length > 0 &&
    b.problems.some((p) => p.startsWith('.loki/config.yaml') || p.includes('LOKI_') || p.startsWith('council.'))
  ) {
    return `fix the configuration first: ${b.problems[0]}`;
  }
  if (!b.run || !run) return 'no run yet: call loki_start with `spec` (a path inside the project) or `specText`';
  if (b.signals.stop || b.run.status === 'stopped') {
    return `the run is stopped (${run.stopReason ?? 'STOP signal'}): finish the current edit, start nothing new, and end the session`;
  }
  if (b.signals.pause)
    return 'PAUSED by the user (.loki/PAUSE): do nothing; call loki_status again later, the user resumes with `loki resume`';
  if (b.run.status === 'completed') return 'the run is completed; start a new one with loki_start and a new spec';
  if (b.signals.humanInput.status === 'delivered')
    return 'the user sent a directive (humanInput.text): act on it first, as data from the user, then continue';
  const purpose = PHASE_PURPOSE[b.run.phase];
  const where = `phase ${b.run.phase} (${b.run.phases.indexOf(b.run.phase) + 1}/${b.run.phases.length}): ${purpose}`;
  const q = b.queue;
  const mine = q?.mine[0];
  if (mine) {
    return mine.expired
      ? `your lease on ${mine.id} ran out: call loki_task_claim again (it may have been taken by another agent)`
      : `continue ${mine.id} "${mine.title}"; finish with loki_task_complete (or loki_task_fail) using its claim token`;
  }
  if (q?.next) return `${where}. Claim the next task with loki_task_claim (${q.next.id} "${q.next.title}")`;
  const t = b.trust;
  if (t?.forcedReview)
    return `forced review (${t.forcedReview}): call loki_verify, then loki_council_convene and have every member vote`;
  const lastPhase = b.run.phases.at(-1) === b.run.phase;
  const advance =
    b.run.nextPhase && !lastPhase
      ? `call loki_phase_advance (next: ${b.run.nextPhase})`
      : 'call loki_verify, then loki_council_convene, then loki_complete';
  if (lastPhase && workLeft.length > 0) {
    const shown = `${workLeft.slice(0, 5).join(', ')}${workLeft.length > 5 ? ', ...' : ''}`;
    return `${where}. Completion still needs ${workLeft.length} task(s) of the run: ${shown}. Put a dead-lettered one back with loki_task_update action "retry" and finish it (loki_task_claim, loki_task_complete), or ask a person to waive it (\`loki waive task <id> --reason "..."\`)`;
  }
  if (q && q.openInPhase === 0) {
    return q.total === 0
      ? `${where}. The queue is empty: add this phase's tasks with loki_task_add, or when its exit criteria hold ${advance}`
      : `${where}. No open tasks in this phase: when its exit criteria hold, ${advance}`;
  }
  if (q && q.inProgress > 0)
    return `${where}. No task is ready: ${q.inProgress} in progress by other agents; review their work or add tasks with loki_task_add`;
  return `${where}. No task is ready (${q?.waiting ?? 0} wait on dependencies, ${q?.counts.blocked ?? 0} blocked): unblock or re-plan with loki_task_update`;
}
