/** loki_phase_advance: gather the facts, let the phase state machine decide, record the transition. */
import { TIER_PHASES, planTransition, type Phase, type PhaseFacts } from '../domain/phases.js';
import { autoCheckpoint } from '../checkpoints/create.js';
import type { Project } from '../project.js';
import { changedFilesSince } from './git.js';
import { RUN_FILE, RUN_RECORD, type RunState } from './records.js';
import { readMarkers } from './signals.js';
import { personAt } from './person.js';
import { enteredBack, readRun } from './state.js';
import { waivedTaskIds } from '../trust/waivers.js';
import { UsageError } from '../errors.js';
import { log } from '../log.js';

const MAX_PHASE_HISTORY = 200;

export interface AdvanceResult {
  ok: boolean;
  from: Phase;
  to: Phase | null;
  reasons: string[];
  run: RunState;
}

export async function advancePhase(
  project: Project,
  target: Phase | undefined,
  reason: string | undefined,
  auto = false,
  /** The audit entry's actor when a person moves the phase (movePhaseAsPerson). */
  actor?: string,
): Promise<AdvanceResult> {
  project.config();
  const store = project.existingStore();
  const before = readRun(store);
  if (!store || !before) throw new UsageError('no run yet: call loki_start first');
  if (before.status !== 'active')
    throw new UsageError(`the run is ${before.status}; phases change only while it is active`);
  if (readMarkers(store).pause) throw new UsageError('the run is paused (.loki/PAUSE); wait for `loki resume`');
  // Facts are gathered outside the transaction (git can take a moment), then the decision is re-made inside it.
  const facts = gatherFacts(project, before);
  // A checkpoint before the transition, when it looks allowed (the decision is re-made in the transaction).
  const preview = planTransition(before.tier, before.phase, target, facts, reason);
  // (Not for an automatic pass of an empty phase: nothing was done in it, and the start or the last task's
  // completion has just taken one.)
  if (preview.ok && !auto) await autoCheckpoint(project, 'phase-advance', `before ${preview.from} -> ${preview.to}`);
  return store.mutate(
    (): AdvanceResult => {
      const run = readRun(store);
      if (!run || run.runId !== before.runId || run.phase !== before.phase)
        throw new UsageError('the run changed while advancing; call loki_status and try again');
      // What the database says is read again here, so a task added meanwhile holds the phase; only the git facts
      // (slow) come from before the transaction.
      const now = { ...facts, ...stateFacts(project, run) };
      const plan = planTransition(run.tier, run.phase, target, now, reason);
      if (!plan.ok) return { ok: false, from: plan.from, to: plan.to ?? null, reasons: plan.reasons, run };
      const at = new Date().toISOString();
      const history = [
        ...run.phaseHistory,
        { from: plan.from, to: plan.to, at, direction: plan.direction, reason: reason?.trim() || null },
      ].slice(-MAX_PHASE_HISTORY);
      const next: RunState = { ...run, phase: plan.to, phaseEnteredAt: at, phaseHistory: history, updatedAt: at };
      store.records.write(RUN_FILE, RUN_RECORD, next);
      return { ok: true, from: plan.from, to: plan.to, reasons: [], run: next };
    },
    (r) =>
      r.ok
        ? {
            action: 'phase.advance',
            target: r.run.runId,
            ...(actor ? { actor } : {}),
            data: { from: r.from, to: r.to, reason: reason ?? null, ...(auto ? { auto: true } : {}) },
          }
        : undefined,
  );
}

/**
 * A person moves the phase from the CLI (`loki phase advance|back PHASE --reason`): through advancePhase, so the
 * same exit criteria hold a forward move as hold the agent's (a person who wants past them waives the work with
 * `loki waive`, which the receipt shows), and a move back needs a reason as it does for the agent. Only the
 * direction is checked here, so that `advance` never goes back and `back` never forward by a typo. Recorded as the
 * person's action.
 */
export async function movePhaseAsPerson(
  project: Project,
  direction: 'advance' | 'back',
  target: Phase | undefined,
  reason: string | undefined,
): Promise<AdvanceResult> {
  const who = personAt(project, 'move the phase for a person');
  project.config();
  if (direction === 'back' && target === undefined) throw new UsageError('name the phase to go back to');
  const run = readRun(project.existingStore());
  if (run && target) {
    const list = TIER_PHASES[run.tier];
    const order = (p: Phase) => (p === 'GROWTH' ? list.length : list.indexOf(p));
    const [at, to] = [order(run.phase), order(target)];
    // A phase outside the tier is left to planTransition, which names the tier's phases.
    if (at >= 0 && to >= 0 && direction === 'advance' && to < at)
      throw new UsageError(
        `${target} comes before ${run.phase}: \`loki phase back ${target} --reason "..."\` goes back`,
      );
    if (at >= 0 && to >= 0 && direction === 'back' && to > at)
      throw new UsageError(`${target} comes after ${run.phase}: \`loki phase advance ${target}\` moves forward`);
  }
  return advancePhase(project, target, reason, false, who.actor);
}

/**
 * Pass the phases with nothing to do: while the current phase has no open task, is not the tier's last, and its
 * exit criteria hold, move to the next (recorded as an automatic transition). An agent would otherwise spend a
 * call on each empty phase (spec tasks all land in DEVELOPMENT), and a claim that finds nothing in it. Returns the
 * phases passed.
 */
export async function passIdlePhases(project: Project): Promise<Phase[]> {
  const passed: Phase[] = [];
  for (let guard = 0; guard < TIER_PHASES.complex.length; guard++) {
    const store = project.existingStore();
    const run = readRun(store);
    if (!run || run.status !== 'active') break;
    const markers = readMarkers(store);
    if (markers.pause || markers.stop) break;
    const phases = TIER_PHASES[run.tier];
    if (!phases.includes(run.phase) || phases.at(-1) === run.phase) break;
    if (stateFacts(project, run).openTasksInPhase.length > 0) break;
    // Sent back here on purpose (QA found a bug) and no rework done yet: the agent adds it first.
    if (cameBackIdle(project, run)) break;
    // DEVELOPMENT is where the work is: it passes by itself only once some of it was done (outside git its
    // code-changed criterion cannot be known, and an empty queue would otherwise skip it at the start).
    if (run.phase === 'DEVELOPMENT' && project.tasks().summary(run).counts.completed === 0) break;
    // Judged here first, without a transaction: loki_status calls this every turn, and most turns it holds.
    if (!planTransition(run.tier, run.phase, undefined, gatherFacts(project, run)).ok) break;
    let r: AdvanceResult;
    try {
      r = await advancePhase(project, undefined, 'nothing to do: no open task and the exit criteria hold', true);
    } catch (err) {
      // Opportunistic: another process moved the run meanwhile (it passes the phase itself), or the store refused.
      // The call this rides on (a completion, a turn) has already succeeded and must not be reported as failed.
      log.warn(`passing an empty phase skipped: ${err instanceof Error ? err.message : String(err)}`);
      break;
    }
    if (!r.ok) break;
    passed.push(r.from);
  }
  return passed;
}

/**
 * The run came back to its phase on purpose (a step back with a reason) and no task of the phase has been
 * completed since: the rework is still to be added. Once some is done the phase passes again like any other.
 */
export function cameBackIdle(project: Project, run: RunState): boolean {
  const last = run.phaseHistory.at(-1);
  if (!last || !enteredBack(run)) return false;
  const done = project.tasks().list({ phase: run.phase, status: ['completed'] }).tasks;
  return !done.some((t) => (t.completion?.at ?? '') > last.at);
}

export function gatherFacts(project: Project, run: RunState): PhaseFacts {
  let changed: number | null = null;
  if (run.git.repository && run.git.baselineCommit && run.phase === 'DEVELOPMENT') {
    changed = changedFilesSince(project.root, run.git.baselineCommit)?.length ?? null;
  }
  return {
    gitRepository: run.git.repository,
    changedFilesSinceBaseline: changed,
    ...stateFacts(project, run),
  };
}

/** The facts a transition needs from the database (cheap: read again inside the transaction). */
function stateFacts(
  project: Project,
  run: RunState,
): Pick<PhaseFacts, 'specRecorded' | 'runCompleted' | 'openTasksInPhase'> {
  const waived = waivedTaskIds(project.existingStore(), run.runId);
  return {
    specRecorded: run.spec !== null,
    runCompleted: run.status === 'completed',
    // A task a person waived (`loki waive`) does not hold its phase either: completion would not wait for it.
    openTasksInPhase: project
      .tasks()
      .openInPhaseIds(run)
      .filter((id) => !waived.has(id)),
  };
}
