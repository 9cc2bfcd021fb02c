/** The work rules of completion (domain/waivers.ts) and what a rollback keeps as history, as pure functions. */
import { describe, expect, it } from 'vitest';
import { HISTORY_DOC_KINDS, historyKinds, withoutHistory } from '../mcp-server/src/domain/checkpoints.js';
import { completionGate, headline, type VerificationFacts } from '../mcp-server/src/domain/evidence.js';
import { TIER_PHASES, TIERS } from '../mcp-server/src/domain/phases.js';
import { TASK_STATES, type TaskState } from '../mcp-server/src/domain/tasks.js';
import {
  judgeWork,
  lastPhaseOf,
  planWaiver,
  type WorkFacts,
  type WorkWaiver,
} from '../mcp-server/src/domain/waivers.js';

const task = (id: string, status: TaskState, phase = 'DEVELOPMENT' as const) => ({ id, status, phase });
const waiver = (id: string, kind: WorkWaiver['kind'], tasks: string[] = []): WorkWaiver => ({
  id,
  runId: 'r-1',
  kind,
  tasks,
  phase: kind === 'phase' ? 'DEVELOPMENT' : null,
  reason: 'a reason a person gave',
  at: '2026-01-01T00:00:00.000Z',
  grantedBy: { kind: 'person', user: 'alice', via: 'loki waive (cli:1)' },
});
const facts = (over: Partial<WorkFacts> = {}): WorkFacts => ({
  tier: 'simple',
  phase: 'QA',
  tasks: [],
  waivers: [],
  ...over,
});

describe('completion means the work was done', () => {
  it('belongs to the last phase of each tier', () => {
    for (const t of TIERS) expect(lastPhaseOf(t)).toBe(TIER_PHASES[t].at(-1));
  });

  it('every state but completed is open work, dead-letter included', () => {
    const tasks = TASK_STATES.map((s, i) => task(`t${i}`, s));
    const v = judgeWork(facts({ tasks }));
    expect(v.open.map((t) => t.status)).toEqual(TASK_STATES.filter((s) => s !== 'completed'));
    expect(v.reasons).toHaveLength(1);
    const r = v.reasons[0]!;
    expect(r).toMatch(
      /^5 task\(s\) of this run are still open \(t0 pending, t1 in-progress, t3 failed, t4 blocked, t5 dead-letter\)/,
    );
    // Each state gets its own way out, and every one ends with the person's waiver.
    expect(r).toMatch(/finished by the agent holding it/);
    expect(r).toMatch(/loki_task_update action "unblock"/);
    expect(r).toMatch(/loki_task_update action "retry"/);
    expect(r).toMatch(/`loki waive task <id> --reason "\.\.\."`/);
    expect(r).not.toMatch(/later phase/);
  });

  it('lists at most 8 ids, and says when tasks wait for a later phase', () => {
    const tasks = Array.from({ length: 10 }, (_, i) => task(`t${i}`, 'pending'));
    const r = judgeWork(facts({ phase: 'BOOTSTRAP', tasks })).reasons;
    expect(r[0]).toMatch(/\(t0 pending, .*t7 pending and 2 more\)/);
    expect(r[0]).toMatch(/tasks of a later phase are handed out once loki_phase_advance reaches it/);
    expect(r[1]).toMatch(/^the run is in BOOTSTRAP, but completion belongs to QA.*finish the open tasks, then move on/);
  });

  it('a waiver covers the tasks it names and is used only when they are still open; the phase waiver likewise', () => {
    const f = facts({
      phase: 'DEVELOPMENT',
      tasks: [task('t1', 'pending'), task('t2', 'completed'), task('t3', 'dead-letter')],
      waivers: [waiver('w001', 'task', ['t1']), waiver('w002', 'task', ['t2']), waiver('w003', 'phase')],
    });
    const v = judgeWork(f);
    expect(v.open).toEqual([
      { id: 't1', status: 'pending', waiver: 'w001' },
      { id: 't3', status: 'dead-letter', waiver: null },
    ]);
    expect(v.phaseWaiver).toBe('w003');
    expect(v.used).toEqual(['w001', 'w003']);
    expect(v.reasons).toEqual([expect.stringMatching(/^1 task\(s\) of this run are still open \(t3 dead-letter\)/)]);
    expect(judgeWork({ ...f, phase: 'QA' }).used).toEqual(['w001']);
  });

  it('the gate puts the work first, and a person waiver is a headline gap', () => {
    const green: VerificationFacts = {
      id: 'v0001',
      at: 'now',
      codeState: 'tree',
      checks: [],
      tests: { verdict: 'pass', passed: 1, failed: 0, skipped: 0, detail: '' },
      diff: { files: 1, insertions: 1, deletions: 0 },
      blocking: [],
      gaps: [],
      toJudge: [],
    };
    const g = completionGate({
      work: facts({ phase: 'BOOTSTRAP', tasks: [task('t1', 'pending')] }),
      councilEnabled: false,
      codeState: 'tree',
      verification: green,
      checklist: null,
      council: null,
      checklistFingerprint: 'x',
    });
    expect(g.accepted).toBe(false);
    expect(g.reasons).toHaveLength(2);
    expect(g.work?.open).toEqual([{ id: 't1', status: 'pending', waiver: null }]);
    expect(headline(green, [], 0).headline).toBe('VERIFIED');
    expect(headline(green, [], 0, ['a person waived t1'])).toEqual({
      headline: 'VERIFIED WITH GAPS',
      why: ['a person waived t1'],
    });
  });

  it('a waiver needs a reason and something open to cover', () => {
    const f = facts({ phase: 'DEVELOPMENT', tasks: [task('t1', 'pending'), task('t2', 'completed')] });
    expect(() => planWaiver('open-work', [], 'short', f)).toThrow(/at least 10 characters/);
    expect(planWaiver('open-work', [], '  the user does it  ', f)).toEqual({
      tasks: ['t1'],
      phase: null,
      reason: 'the user does it',
    });
    expect(() => planWaiver('open-work', ['t1'], 'the user does it', f)).toThrow(/takes no task ids/);
    expect(() => planWaiver('task', [], 'the user does it', f)).toThrow(/usage/);
    expect(() => planWaiver('task', ['t2'], 'the user does it', f)).toThrow(/t2 is completed/);
    expect(() => planWaiver('task', ['t9'], 'the user does it', f)).toThrow(/no task "t9"/);
    expect(planWaiver('phase', [], 'QA is done elsewhere', f)).toMatchObject({ phase: 'DEVELOPMENT' });
    expect(() => planWaiver('phase', [], 'QA is done elsewhere', { ...f, phase: 'QA' })).toThrow(/nothing to waive/);
    const covered = { ...f, waivers: [waiver('w001', 'open-work', ['t1']), waiver('w002', 'phase')] };
    expect(() => planWaiver('open-work', [], 'the user does it', covered)).toThrow(/waived already/);
    expect(() => planWaiver('task', ['t1'], 'the user does it', covered)).toThrow(/waived already \(w001\)/);
    expect(() => planWaiver('phase', [], 'QA is done elsewhere', covered)).toThrow(/waived already \(w002\)/);
  });
});

describe('what a rollback keeps as history', () => {
  it('verifications, councils, waivers and the alerts fired always; the trust state when it is the same run', () => {
    expect([...HISTORY_DOC_KINDS]).toEqual(['verification', 'baseline-tests', 'council', 'waiver', 'notify']);
    expect(historyKinds({ current: 'r-1', target: 'r-1' })).toContain('trust');
    expect(historyKinds({ current: 'r-2', target: 'r-1' })).not.toContain('trust');
    expect(historyKinds({ current: null, target: null })).not.toContain('trust');
    const rows = [
      { key: 'docs/verify/r-1/v0001', sha256: 'a', size: 1, kind: 'verification' },
      { key: 'docs/run', sha256: 'b', size: 1, kind: 'run' },
      { key: 'tasks/t1', sha256: 'c', size: 1 },
    ];
    expect(withoutHistory(rows, historyKinds({ current: 'r-1', target: 'r-1' })).map((r) => r.key)).toEqual([
      'docs/run',
      'tasks/t1',
    ]);
  });
});
