/** loki_status: the per-turn briefing, which also counts the turn, heartbeats and delivers HUMAN_INPUT. */
import { PHASE_PURPOSE, TIER_PHASES, nextPhase, type Phase, type Tier } from '../domain/phases.js';
import type { Project } from '../project.js';
import { RUN_FILE, RUN_RECORD, SESSION_RECORD, sessionFile, sessionLiveness, type RunState } from './records.js';
import { heartbeat, type SessionIdentity } from './sessions.js';
import { HUMAN_INPUT, HUMAN_INPUT_IGNORED, type HumanInput, readMarkers, takeHumanInput } from './signals.js';
import { readRun } from './state.js';

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
  problems: string[];
  next: string;
}

export interface StatusOptions {
  /** Do not count a turn, heartbeat, or take HUMAN_INPUT (read-only look). */
  peek: boolean;
}

/** The per-turn briefing. Unless `peek`, it counts a turn, heartbeats the session and delivers HUMAN_INPUT. */
export async function briefing(project: Project, who: SessionIdentity | undefined, opts: StatusOptions): Promise<Briefing> {
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
      'state',
      () => {
        const current = readRun(store);
        if (!current || current.status !== 'active') return { run: current, changed: false as const };
        const now = new Date().toISOString();
        let next: RunState = { ...current, iteration: current.iteration + 1, updatedAt: now };
        if (markers.stop) next = { ...next, status: 'stopped', stoppedAt: now, stopReason: 'STOP signal' };
        else if (next.iteration > maxIterations) next = { ...next, status: 'stopped', stoppedAt: now, stopReason: `iteration limit (${maxIterations}) reached` };
        store.records.write(RUN_FILE, RUN_RECORD, next);
        return { run: next, changed: true as const };
      },
      (r) =>
        r.changed && r.run
          ? r.run.status === 'stopped'
            ? { action: 'run.stop', target: r.run.runId, data: { reason: r.run.stopReason, iteration: r.run.iteration } }
            : { action: 'run.turn', target: r.run.runId, data: { iteration: r.run.iteration, session: who?.id ?? null } }
          : undefined,
    );
    run = turn.run;
    if (who && run) session = { id: who.id, status: heartbeat(store, run.runId, who) };
    if (config && store.exists(HUMAN_INPUT)) {
      humanInput = await store.mutate(
        'signals',
        () => takeHumanInput(store, config.promptInjection, config.humanInputMaxBytes),
        (h) => (h.status === 'delivered' || h.status === 'rejected' ? { action: `human-input.${h.status}`, data: h.status === 'delivered' ? { archivedAs: h.archivedAs, bytes: Buffer.byteLength(h.text) } : { reason: h.reason } } : undefined),
      );
    }
  } else if (store && who) {
    const s = store.records.read(sessionFile(who.id), SESSION_RECORD);
    if (s) session = { id: s.id, status: sessionLiveness(s) };
  }
  if (humanInput.status === 'none' && store && store.exists(HUMAN_INPUT) && !(config?.promptInjection ?? false)) {
    humanInput = { status: 'ignored', reason: HUMAN_INPUT_IGNORED };
  }
  // The most recent quarantines this process made (the files themselves stay in .loki/quarantine/).
  if (store) for (const q of store.records.quarantined.slice(-5)) problems.push(`.loki/${q.file} was invalid (${q.reason}) and was moved to ${q.movedTo ? `.loki/${q.movedTo}` : 'nowhere (move failed)'}`);

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
    budget: { limitUsd: limit, spentUsd: null, note: limit === null ? 'no budget limit set' : 'spend is measured by the Claude Code hooks from the host transcript' },
    problems,
    next: '',
  };
  b.next = nextHint(b, run);
  return b;
}

/** One instruction for the agent's next step. Pure over the briefing. */
export function nextHint(b: Briefing, run: RunState | undefined): string {
  if (b.problems.length > 0 && b.problems.some((p) => p.startsWith('.loki/config.yaml') || p.includes('LOKI_') || p.startsWith('council.'))) {
    return `fix the configuration first: ${b.problems[0]}`;
  }
  if (!b.run || !run) return 'no run yet: call loki_start with `spec` (a path inside the project) or `specText`';
  if (b.signals.stop || b.run.status === 'stopped') {
    return `the run is stopped (${run.stopReason ?? 'STOP signal'}): finish the current edit, start nothing new, and end the session`;
  }
  if (b.signals.pause) return 'PAUSED by the user (.loki/PAUSE): do nothing; call loki_status again later, the user resumes with `loki resume`';
  if (b.run.status === 'completed') return 'the run is completed; start a new one with loki_start and a new spec';
  if (b.signals.humanInput.status === 'delivered') return 'the user sent a directive (humanInput.text): act on it first, as data from the user, then continue';
  const purpose = PHASE_PURPOSE[b.run.phase];
  const next = b.run.nextPhase;
  return `phase ${b.run.phase} (${b.run.phases.indexOf(b.run.phase) + 1}/${b.run.phases.length}): ${purpose}. ${
    next ? `When its exit criteria hold, call loki_phase_advance (next: ${next}).` : ''
  }`.trim();
}
