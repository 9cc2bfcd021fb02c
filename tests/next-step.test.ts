/**
 * run/next-step.ts nextStep, state by state: the step a result ends with must be one the server accepts and
 * must move the run on (never the same refused or fruitless call again). Pure: briefings built by hand.
 */
import { describe, expect, it } from 'vitest';
import type { Briefing } from '../mcp-server/src/run/briefing.js';
import { formatNext, nextStep, type CompletionStage } from '../mcp-server/src/run/next-step.js';
import type { RunState } from '../mcp-server/src/run/records.js';

function briefing(over: { phase?: 'DEVELOPMENT' | 'QA'; forcedReview?: string | null; openInPhase?: number } = {}) {
  const phase = over.phase ?? 'QA';
  const b = {
    project: '/p',
    run: {
      runId: 'r-1',
      status: 'active',
      phase,
      phases: ['BOOTSTRAP', 'DEVELOPMENT', 'QA'],
      nextPhase: phase === 'QA' ? 'GROWTH' : 'QA',
      tier: 'simple',
      iteration: 3,
      maxIterations: 1000,
      startedAt: '',
      spec: null,
      baseline: null,
    },
    session: null,
    signals: { pause: false, stop: false, humanInput: { status: 'none' } },
    budget: { limitUsd: null, spentUsd: null, note: '' },
    queue: {
      counts: { pending: 0, 'in-progress': 0, completed: 2, failed: 0, blocked: 0, 'dead-letter': 0 },
      total: 2,
      mine: [],
      inProgress: 0,
      next: null,
      openInPhase: over.openInPhase ?? 0,
      laterPhases: 0,
      waiting: 0,
    },
    trust: {
      checklist: null,
      verification: null,
      council: null,
      findings: [],
      forcedReview: over.forcedReview ?? null,
      councilDue: false,
      unchangedTurns: 0,
      stagnated: false,
    },
    problems: [],
    next: '',
    nextCall: null,
  } as unknown as Briefing;
  return b;
}

const RUN = { stopReason: null } as unknown as RunState;

function stage(over: Partial<CompletionStage> = {}): CompletionStage {
  return {
    workLeft: [],
    refused: [],
    verification: { id: 'v0002', current: true, blocking: [] },
    failingItems: [],
    openItems: [],
    councilEnabled: true,
    council: null,
    ...over,
  };
}

const step = (b: Briefing, completion?: CompletionStage, extra: { enteredBack?: boolean } = {}) =>
  nextStep(b, RUN, { completion, ...extra });

describe('nextStep', () => {
  it('walks the last phase: verify, mark the checklist, convene, complete', () => {
    expect(step(briefing(), stage({ verification: null })).call?.tool).toBe('loki_verify');
    expect(step(briefing(), stage({ openItems: ['r-1'] })).call).toMatchObject({
      tool: 'loki_checklist_set',
      args: { items: [{ id: 'r-1', status: 'met' }] },
    });
    expect(step(briefing(), stage()).call?.tool).toBe('loki_council_convene');
    const approved = { id: 'k001', state: 'approved', nextSeat: null, reasons: [] } as const;
    expect(step(briefing(), stage({ council: approved })).call?.tool).toBe('loki_complete');
    expect(step(briefing(), stage({ councilEnabled: false })).call?.tool).toBe('loki_complete');
  });

  it('after a refused completion names the work, not loki_complete again', () => {
    const approved = { id: 'k001', state: 'approved', nextSeat: null, reasons: [] } as const;
    const s = step(briefing(), stage({ council: approved, refused: ['held-out item c-1 was found met by only 1'] }));
    expect(s.call?.tool).toBe('loki_verify');
    expect(s.work).toMatch(/address why completion was refused \(held-out item c-1/);
  });

  it('a blocking verification names the fix before verifying again', () => {
    const s = step(briefing(), stage({ verification: { id: 'v1', current: true, blocking: ['Tests failed'] } }));
    expect(formatNext(s)).toMatch(/^fix what blocks \(Tests failed\), then loki_verify \{\}/);
  });

  it('work left: retry only a dead-lettered task; claim a pending one; wait for one in progress', () => {
    const dead = step(
      briefing(),
      stage({
        workLeft: [
          { id: 't1', status: 'in-progress' },
          { id: 't2', status: 'dead-letter' },
        ],
      }),
    );
    expect(dead.call).toEqual({ tool: 'loki_task_update', args: { id: 't2', action: 'retry' } });
    expect(step(briefing(), stage({ workLeft: [{ id: 't3', status: 'pending' }] })).call).toEqual({
      tool: 'loki_task_claim',
      args: { taskId: 't3' },
    });
    const busy = step(briefing(), stage({ workLeft: [{ id: 't1', status: 'in-progress' }] }));
    expect(busy.call).toBeUndefined();
    expect(busy.note).toMatch(/t1 is in progress by another agent/);
    expect(step(briefing(), stage({ workLeft: [{ id: 't4', status: 'blocked' }] })).call?.tool).toBe('loki_task_list');
  });

  it('a forced review: fix what blocks, convene when it passes, rework after a rejection, none without a council', () => {
    const b = briefing({ phase: 'DEVELOPMENT', forcedReview: 'no code change in 4 turns', openInPhase: 2 });
    const blocked = step(b, stage({ verification: { id: 'v1', current: true, blocking: ['no diff'] } }));
    expect(blocked.work).toMatch(/^fix what blocks \(no diff\)/);
    expect(blocked.call?.tool).toBe('loki_verify');
    expect(step(b, stage()).call?.tool).toBe('loki_council_convene');
    const rejected = {
      id: 'k002',
      state: 'rejected',
      nextSeat: null,
      reasons: ['seat 2: tests check nothing'],
    } as const;
    const rework = step(b, stage({ council: rejected }));
    expect(rework.work).toMatch(/address what council k002 found \(seat 2: tests check nothing\)/);
    expect(rework.call?.tool).toBe('loki_verify');
    // The council disabled: no review to force; the phase's work comes next.
    expect(step(b, stage({ councilEnabled: false })).call?.tool).not.toMatch(/council|verify/);
  });

  it('a phase the run came back to stays until the agent adds the rework', () => {
    const b = briefing({ phase: 'DEVELOPMENT' });
    expect(step(b, undefined, { enteredBack: true }).call?.tool).toBe('loki_task_add');
  });
});
