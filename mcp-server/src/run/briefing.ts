/** loki_status: the per-turn briefing, which also counts the turn, heartbeats and delivers HUMAN_INPUT. */
import { TIER_PHASES, nextPhase, planTransition, type Phase, type Tier } from '../domain/phases.js';
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
import { formatNext, nextStep, type CompletionStage, type NextCall, type Orphan } from './next-step.js';
import { stoppedSessions } from './sessions.js';
import { cameBackIdle, gatherFacts } from './phase.js';
import { visibleItems } from '../domain/checklist.js';
import { readChecklist } from '../trust/checklist.js';
import { latestCouncil, nextSeatOf, outcomeOf } from '../trust/council.js';
import { latestFacts } from '../trust/facts.js';
import { checklistFingerprint, codeState, readTrust } from '../trust/state.js';
import type { Store } from '../store/store.js';
import { fireAlerts, readAlerts, type Alert } from './notify.js';
import type { TaskFailures } from '../domain/notify.js';
import { log } from '../log.js';

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
  /** The notification triggers that hold now (domain/notify.ts); each fired once, when it first held. */
  alerts: Alert[];
  problems: string[];
  /** One step, in the form run/next-step.ts describes. */
  next: string;
  /** The loki call `next` names, if any (for hooks and tests). */
  nextCall: NextCall | null;
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
  let failures: TaskFailures | undefined;
  if (store && run) {
    const tasks = project.tasks();
    if (who && !opts.peek && run.status === 'active') await tasks.renewHeldBy(who.id);
    const q = tasks.summary(run);
    failures = q.failures;
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

  // The notification triggers: looked at, or (a counted turn) fired, never failing the briefing.
  let alerts: Alert[] = [];
  if (store && run) {
    try {
      alerts = opts.peek ? readAlerts(project, failures) : await fireAlerts(project, failures);
    } catch (err) {
      log.warn(`notification triggers: ${(err as Error).message}`);
    }
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
    alerts,
    problems,
    next: '',
    nextCall: null,
  };
  const lastPhaseIdle = run && queue && TIER_PHASES[run.tier].at(-1) === run.phase && queue.openInPhase === 0;
  const step = nextStep(b, run, {
    completion:
      run && queue && ((lastPhaseIdle && !queue.next && queue.mine.length === 0) || trust?.forcedReview)
        ? completionStage(project, run)
        : undefined,
    orphans: store && queue && queue.inProgress > 0 ? orphanedClaims(project, store, who?.id) : [],
    phaseHeldBy:
      run && queue && run.status === 'active' && !lastPhaseIdle && queue.openInPhase === 0 && !queue.next
        ? phaseHeldBy(project, run)
        : undefined,
    enteredBack: run ? cameBackIdle(project, run) : false,
  });
  b.next = formatNext(step);
  b.nextCall = step.call ?? null;
  return b;
}

/**
 * What completion still needs, once the last phase has nothing open (domain/waivers.ts judgeWork for the tasks,
 * the latest verification and council against the code now, the checklist as the builder sees it).
 */
export function completionStage(project: Project, run: RunState): CompletionStage {
  const store = project.existingStore();
  const config = project.effectiveConfig().problems.length === 0 ? project.config() : undefined;
  const workLeft = judgeWork(workFacts(project, run))
    .open.filter((t) => t.waiver === null)
    .map((t) => ({ id: t.id, status: t.status }));
  const facts = latestFacts(project, run.runId);
  const council = latestCouncil(store, run.runId);
  // Hashing the working tree costs a git call: only here, where the next step depends on it.
  const now = facts || council ? codeState(run, project.root) : null;
  const list = readChecklist(store, run.runId);
  // Held-out items (once revealed) are the council's to judge, never the builder's to mark.
  const items = list ? visibleItems(list).filter((i) => !i.heldOut) : [];
  const trust = readTrust(store, run.runId);
  // A rejection stands for the code it judged; an approval or a vote in progress only for the very verification
  // and checklist it was given (completion compares both).
  const sameCode = council !== undefined && council.codeState === now;
  const current = sameCode && council.verificationId === facts?.id && council.checklist === checklistFingerprint(list);
  const outcome = council && sameCode ? outcomeOf(council) : null;
  return {
    workLeft,
    refused: trust.findings.length > 0 && nothingChangedSinceRefusal(store) ? trust.findings : [],
    verification: facts && { id: facts.id, current: facts.codeState === now, blocking: facts.blocking },
    failingItems: items.filter((i) => i.status !== 'waived' && i.check && i.result && !i.result.ok).map((i) => i.id),
    openItems: items.filter((i) => !i.check && i.status === 'open').map((i) => i.id),
    councilEnabled: config?.council.enabled ?? true,
    council:
      council && outcome && (outcome.state === 'rejected' || current)
        ? {
            id: council.id,
            state: outcome.state,
            nextSeat: outcome.state === 'voting' ? nextSeatOf(council) : null,
            reasons: outcome.state === 'rejected' ? outcome.reasons : [],
          }
        : null,
  };
}

/** What the audit log records without changing what completion judges (turns, sessions, hooks, checkpoints, alerts). */
const UNCHANGING = /^(run\.turn|session\.|hook\.|checkpoint\.create|task\.renew|human-input\.|notify\.)/;

/**
 * The last loki_complete was refused and nothing completion judges has changed since: naming loki_complete again
 * would only be refused again (a verification, a vote, a task, a waiver or a checklist edit all count as change).
 */
function nothingChangedSinceRefusal(store: Store | undefined): boolean {
  const since = store?.audit.actionsSince('run.complete.refused');
  return since !== null && since !== undefined && since.every((a) => UNCHANGING.test(a));
}

/** The exit criteria of the current phase that do not hold (none: it may advance). */
function phaseHeldBy(project: Project, run: RunState): string[] {
  const plan = planTransition(run.tier, run.phase, undefined, gatherFacts(project, run));
  return plan.ok ? [] : plan.reasons;
}

/** Tasks held by a session of this run that has stopped (not by `me`): the next session resumes them first. */
function orphanedClaims(project: Project, store: Store, me: string | undefined): Orphan[] {
  const stopped = stoppedSessions(store);
  if (me) stopped.delete(me);
  if (stopped.size === 0) return [];
  return project
    .tasks()
    .list({ status: ['in-progress'] })
    .tasks.filter((t) => t.lease && stopped.has(t.lease.agent))
    .map((t) => ({ id: t.id, title: t.title, session: t.lease!.agent }));
}
