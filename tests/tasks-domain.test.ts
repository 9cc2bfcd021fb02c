/** The task queue's pure rules (domain/tasks.ts): order, readiness, phases, transitions, tokens, dependencies, and a model-based run. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PHASES, TIERS, TIER_PHASES, type Phase, type Tier } from '../mcp-server/src/domain/phases.js';
import {
  MAX_ATTEMPTS_KEPT,
  MAX_ERROR_CHARS,
  OPEN_STATES,
  PRIORITIES,
  TASK_STATES,
  blockTask,
  checkDependencies,
  checkHolder,
  claimOrder,
  claimTask,
  completeTask,
  countStates,
  editTask,
  effectivePhase,
  expireLease,
  failTask,
  findCycle,
  isReady,
  leaseExpired,
  phaseAllows,
  pickNext,
  releaseTask,
  renewLease,
  retryTask,
  unblockTask,
  unmetDependencies,
  type Attempt,
  type Priority,
  type Task,
  type TaskState,
} from '../mcp-server/src/domain/tasks.js';
import { TaskRuleError } from '../mcp-server/src/errors.js';

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const LEASE = 60_000;

function mk(id: string, over: Partial<Task> = {}): Task {
  return {
    id,
    seq: 1,
    runId: 'r-20260301-00000000',
    title: `task ${id}`,
    description: '',
    priority: 'medium',
    phase: 'DEVELOPMENT',
    dependencies: [],
    acceptance: [],
    source: { kind: 'agent', section: null },
    status: 'pending',
    lease: null,
    attempts: [],
    failures: 0,
    blockedReason: null,
    completion: null,
    deadLetteredAt: null,
    createdAt: iso(T0),
    updatedAt: iso(T0),
    rev: 0,
    ...over,
  };
}

const lookupOf = (tasks: readonly Task[]) => {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  return (id: string) => byId.get(id);
};

const none = () => undefined;

/** A task claimed by `agent` with `token` at `now`. */
const claimed = (id: string, agent = 'agent-a', token = 'tok-a', now = T0, over: Partial<Task> = {}) =>
  claimTask(mk(id, over), agent, token, now, LEASE);

// ---- claim order --------------------------------------------------------------------------------------------

describe('claim order', () => {
  it('serves higher priority first', () => {
    const tasks = ['low', 'critical', 'medium', 'high'].map((p, i) =>
      mk(`p${i}`, { priority: p as Priority, seq: i + 1 }),
    );
    expect([...tasks].sort(claimOrder).map((t) => t.priority)).toEqual(['critical', 'high', 'medium', 'low']);
    expect(PRIORITIES).toEqual(['critical', 'high', 'medium', 'low']);
  });

  it('serves fresh work before failed retries of the same priority, but priority beats that', () => {
    const failedOld = mk('a', { seq: 1, status: 'failed', failures: 1 });
    const freshNew = mk('b', { seq: 2 });
    expect([failedOld, freshNew].sort(claimOrder).map((t) => t.id)).toEqual(['b', 'a']);
    const failedCritical = mk('c', { seq: 3, status: 'failed', failures: 2, priority: 'critical' });
    const freshHigh = mk('d', { seq: 1, priority: 'high' });
    expect([freshHigh, failedCritical].sort(claimOrder).map((t) => t.id)).toEqual(['c', 'd']);
  });

  it('is first come, first served (seq) within a priority and state, with the id as the last tiebreak', () => {
    const tasks = [mk('z', { seq: 3 }), mk('y', { seq: 1 }), mk('x', { seq: 2 })];
    expect([...tasks].sort(claimOrder).map((t) => t.id)).toEqual(['y', 'x', 'z']);
    const sameSeq = [mk('b', { seq: 5 }), mk('c', { seq: 5 }), mk('a', { seq: 5 })];
    expect([...sameSeq].sort(claimOrder).map((t) => t.id)).toEqual(['a', 'b', 'c']);
    expect(claimOrder(mk('a'), mk('a'))).toBe(0);
  });

  it('pickNext takes the best ready, allowed task, whatever the iteration order', () => {
    const dep = mk('dep', { seq: 1, status: 'in-progress' });
    const tasks = [
      dep,
      mk('waits', { seq: 2, priority: 'critical', dependencies: ['dep'] }),
      mk('blocked', { seq: 3, priority: 'critical', status: 'blocked', blockedReason: 'x' }),
      mk('later', { seq: 4, priority: 'high', phase: 'QA' }),
      mk('retry', { seq: 5, priority: 'high', status: 'failed', failures: 1 }),
      mk('fresh', { seq: 6, priority: 'high' }),
      mk('low', { seq: 7, priority: 'low' }),
    ];
    const lookup = lookupOf(tasks);
    const notQa = (t: Task) => t.phase !== 'QA';
    for (const order of [
      tasks,
      [...tasks].reverse(),
      [tasks[4]!, tasks[6]!, tasks[5]!, tasks[0]!, tasks[3]!, tasks[1]!, tasks[2]!],
    ]) {
      expect(pickNext(order, lookup, notQa)?.id).toBe('fresh');
      expect(pickNext(order, lookup, () => true)?.id).toBe('later');
    }
    expect(pickNext(tasks, lookup, () => false)).toBeUndefined();
    expect(pickNext([], lookup, () => true)).toBeUndefined();
  });

  it('sorting by claimOrder gives the same result for every permutation (a total order)', () => {
    const taskArb = fc.record({
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      seq: fc.integer({ min: 1, max: 4 }),
      priority: fc.constantFrom(...PRIORITIES),
      failed: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.uniqueArray(taskArb, { selector: (t) => t.id, minLength: 1, maxLength: 6 }), (specs) => {
        const tasks = specs.map((s) =>
          mk(s.id, { seq: s.seq, priority: s.priority, status: s.failed ? 'failed' : 'pending' }),
        );
        const sorted = [...tasks].sort(claimOrder).map((t) => t.id);
        expect(
          [...tasks]
            .reverse()
            .sort(claimOrder)
            .map((t) => t.id),
        ).toEqual(sorted);
        expect(pickNext(tasks, none, () => true)?.id).toBe(sorted[0]);
        for (const a of tasks)
          for (const b of tasks) expect(Math.sign(claimOrder(a, b)) + Math.sign(claimOrder(b, a))).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

// ---- readiness --------------------------------------------------------------------------------------------

describe('readiness', () => {
  it('only pending and failed tasks can be ready', () => {
    const expected: Record<TaskState, boolean> = {
      pending: true,
      failed: true,
      'in-progress': false,
      completed: false,
      blocked: false,
      'dead-letter': false,
    };
    for (const s of TASK_STATES) expect(isReady(mk('t', { status: s }), none), s).toBe(expected[s]);
  });

  it('needs every dependency completed; a dead-lettered or unknown dependency keeps it waiting', () => {
    for (const s of TASK_STATES) {
      const dep = mk('d', { status: s });
      const t = mk('t', { dependencies: ['d'] });
      expect(isReady(t, lookupOf([dep, t])), `dependency ${s}`).toBe(s === 'completed');
      expect(unmetDependencies(t, lookupOf([dep, t]))).toEqual(s === 'completed' ? [] : ['d']);
    }
    const t = mk('t', { dependencies: ['gone'] });
    expect(isReady(t, none)).toBe(false);
    expect(unmetDependencies(t, none)).toEqual(['gone']);
  });

  it('lists exactly the unmet dependencies, in their order', () => {
    const tasks = [
      mk('a', { status: 'completed' }),
      mk('b', { status: 'dead-letter' }),
      mk('c', { status: 'completed' }),
      mk('d', { status: 'failed' }),
    ];
    const t = mk('t', { status: 'failed', dependencies: ['d', 'a', 'b', 'c', 'x'] });
    expect(unmetDependencies(t, lookupOf([...tasks, t]))).toEqual(['d', 'b', 'x']);
    expect(isReady(mk('u', { status: 'failed', dependencies: ['a', 'c'] }), lookupOf(tasks))).toBe(true);
  });

  it('counts every state, zeros included', () => {
    expect(countStates([])).toEqual({
      pending: 0,
      'in-progress': 0,
      completed: 0,
      failed: 0,
      blocked: 0,
      'dead-letter': 0,
    });
    const tasks = [mk('a'), mk('b'), mk('c', { status: 'completed' }), mk('d', { status: 'dead-letter' })];
    expect(countStates(tasks)).toEqual({
      pending: 2,
      'in-progress': 0,
      completed: 1,
      failed: 0,
      blocked: 0,
      'dead-letter': 1,
    });
    expect(OPEN_STATES).toEqual(['pending', 'in-progress', 'failed', 'blocked']);
  });
});

// ---- phases -------------------------------------------------------------------------------------------------

describe('effectivePhase / phaseAllows', () => {
  const EFFECTIVE: Record<Tier, Record<Phase, Phase>> = {
    simple: {
      BOOTSTRAP: 'BOOTSTRAP',
      DISCOVERY: 'DEVELOPMENT',
      ARCHITECTURE: 'DEVELOPMENT',
      DEEPEN_PLAN: 'DEVELOPMENT',
      INFRASTRUCTURE: 'DEVELOPMENT',
      DEVELOPMENT: 'DEVELOPMENT',
      QA: 'QA',
      DEPLOYMENT: 'QA',
      GROWTH: 'QA',
    },
    standard: {
      BOOTSTRAP: 'BOOTSTRAP',
      DISCOVERY: 'DISCOVERY',
      ARCHITECTURE: 'ARCHITECTURE',
      DEEPEN_PLAN: 'DEEPEN_PLAN',
      INFRASTRUCTURE: 'DEVELOPMENT',
      DEVELOPMENT: 'DEVELOPMENT',
      QA: 'QA',
      DEPLOYMENT: 'QA',
      GROWTH: 'QA',
    },
    complex: {
      BOOTSTRAP: 'BOOTSTRAP',
      DISCOVERY: 'DISCOVERY',
      ARCHITECTURE: 'ARCHITECTURE',
      DEEPEN_PLAN: 'DEEPEN_PLAN',
      INFRASTRUCTURE: 'INFRASTRUCTURE',
      DEVELOPMENT: 'DEVELOPMENT',
      QA: 'QA',
      DEPLOYMENT: 'DEPLOYMENT',
      GROWTH: 'DEPLOYMENT',
    },
  };

  it.each(TIERS)('maps a skipped phase to the next phase of the %s tier, or its last', (tier) => {
    for (const p of PHASES) {
      expect(effectivePhase(p, tier), `${tier} ${p}`).toBe(EFFECTIVE[tier][p]);
      expect(TIER_PHASES[tier]).toContain(effectivePhase(p, tier));
    }
  });

  const ALLOWED: [Tier, Phase, Phase[]][] = [
    ['simple', 'BOOTSTRAP', ['BOOTSTRAP']],
    [
      'simple',
      'DEVELOPMENT',
      ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN', 'INFRASTRUCTURE', 'DEVELOPMENT'],
    ],
    ['simple', 'QA', [...PHASES]],
    ['standard', 'BOOTSTRAP', ['BOOTSTRAP']],
    ['standard', 'DISCOVERY', ['BOOTSTRAP', 'DISCOVERY']],
    ['standard', 'ARCHITECTURE', ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE']],
    ['standard', 'DEEPEN_PLAN', ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN']],
    [
      'standard',
      'DEVELOPMENT',
      ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN', 'INFRASTRUCTURE', 'DEVELOPMENT'],
    ],
    ['standard', 'QA', [...PHASES]],
    ['complex', 'BOOTSTRAP', ['BOOTSTRAP']],
    ['complex', 'DEEPEN_PLAN', ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN']],
    ['complex', 'INFRASTRUCTURE', ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN', 'INFRASTRUCTURE']],
    [
      'complex',
      'DEVELOPMENT',
      ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN', 'INFRASTRUCTURE', 'DEVELOPMENT'],
    ],
    ['complex', 'QA', ['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN', 'INFRASTRUCTURE', 'DEVELOPMENT', 'QA']],
    ['complex', 'DEPLOYMENT', [...PHASES]],
  ];

  it.each(ALLOWED)('a %s run in %s may claim tasks labelled %j', (tier, runPhase, allowed) => {
    for (const p of PHASES)
      expect(phaseAllows(mk('t', { phase: p }), { tier, phase: runPhase }), `task in ${p}`).toBe(allowed.includes(p));
  });

  it('allows everything with no run and in GROWTH', () => {
    for (const tier of TIERS) {
      for (const p of PHASES) {
        expect(phaseAllows(mk('t', { phase: p }), undefined)).toBe(true);
        expect(phaseAllows(mk('t', { phase: p }), { tier, phase: 'GROWTH' })).toBe(true);
      }
    }
  });
});

// ---- transitions -------------------------------------------------------------------------------------------

describe('transitions', () => {
  it('claim: in progress under a lease, a new open attempt, rev + 1; the input is not changed', () => {
    const t = mk('t1', { rev: 4 });
    const before = structuredClone(t);
    const c = claimTask(t, 'agent-a', 'tok-1', T0 + 5, LEASE);
    expect(t).toEqual(before);
    expect(c).toMatchObject({
      status: 'in-progress',
      lease: { agent: 'agent-a', token: 'tok-1', claimedAt: iso(T0 + 5), expiresAt: iso(T0 + 5 + LEASE) },
      attempts: [
        { n: 1, agent: 'agent-a', token: 'tok-1', claimedAt: iso(T0 + 5), endedAt: null, outcome: null, error: null },
      ],
      failures: 0,
      rev: 5,
      updatedAt: iso(T0 + 5),
      createdAt: iso(T0),
    });
    const again = claimTask(releaseTask(c, 'tok-1', T0 + 6, null), 'agent-b', 'tok-2', T0 + 7, LEASE);
    expect(again.attempts.map((a) => [a.n, a.token, a.outcome])).toEqual([
      [1, 'tok-1', 'released'],
      [2, 'tok-2', null],
    ]);
  });

  it('renew: a later expiry, same claim time; nothing to renew without a lease', () => {
    const c = claimed('t1');
    const r = renewLease(c, T0 + 30_000, LEASE);
    expect(r.lease).toEqual({ ...c.lease, expiresAt: iso(T0 + 30_000 + LEASE) });
    expect(r).toMatchObject({ status: 'in-progress', rev: c.rev + 1, updatedAt: iso(T0 + 30_000) });
    const p = mk('t2');
    expect(renewLease(p, T0, LEASE)).toBe(p);
  });

  it('complete: completed, lease gone, attempt ended, completion recorded with the holder', () => {
    const c = claimed('t1', 'agent-a', 'tok-a', T0, { failures: 1 });
    const d = completeTask(c, 'tok-a', T0 + 100, 'did it', ['src/a.ts']);
    expect(d).toMatchObject({
      status: 'completed',
      lease: null,
      failures: 1,
      deadLetteredAt: null,
      completion: { at: iso(T0 + 100), agent: 'agent-a', summary: 'did it', evidence: ['src/a.ts'] },
      rev: c.rev + 1,
      updatedAt: iso(T0 + 100),
    });
    expect(d.attempts).toEqual([
      {
        n: 1,
        agent: 'agent-a',
        token: 'tok-a',
        claimedAt: iso(T0),
        endedAt: iso(T0 + 100),
        outcome: 'completed',
        error: null,
      },
    ]);
  });

  it('fail below the limit: failed, one more failure, attempt ended with the error', () => {
    const c = claimed('t1');
    const f = failTask(c, 'tok-a', T0 + 10, 'tests broke', 'failed', 3);
    expect(f).toMatchObject({
      status: 'failed',
      lease: null,
      failures: 1,
      deadLetteredAt: null,
      rev: c.rev + 1,
      updatedAt: iso(T0 + 10),
    });
    expect(f.attempts[0]).toMatchObject({ endedAt: iso(T0 + 10), outcome: 'failed', error: 'tests broke' });
    expect(isReady(f, none)).toBe(true);
  });

  it('fail reaching the limit: dead-letter, with the time, never ready again until retried', () => {
    let t = mk('t1');
    const max = 3;
    for (let i = 0; i < max; i++) {
      t = claimTask(t, 'a', `tok-${i}`, T0 + i * 10, LEASE);
      t = failTask(t, `tok-${i}`, T0 + i * 10 + 5, `boom ${i}`, 'failed', max);
      expect(t.failures).toBe(i + 1);
      expect(t.status).toBe(i + 1 < max ? 'failed' : 'dead-letter');
    }
    expect(t.deadLetteredAt).toBe(iso(T0 + 25));
    expect(t.attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(isReady(t, none)).toBe(false);
    const dependent = mk('t2', { dependencies: ['t1'] });
    expect(isReady(dependent, lookupOf([t, dependent]))).toBe(false);
    expect(failTask(claimed('x'), 'tok-a', T0, 'e', 'failed', 1).status).toBe('dead-letter');
  });

  it('an expired lease counts as a failure and ends the attempt as expired, naming the holder and the times', () => {
    const c = claimed('t1', 'agent-a', 'tok-a', T0);
    expect(leaseExpired(c, T0 + LEASE - 1)).toBe(false);
    expect(leaseExpired(c, T0 + LEASE)).toBe(true);
    const e = expireLease(c, T0 + LEASE, 5);
    expect(e).toMatchObject({ status: 'failed', lease: null, failures: 1, rev: c.rev + 1, updatedAt: iso(T0 + LEASE) });
    expect(e.attempts[0]).toMatchObject({ outcome: 'expired', endedAt: iso(T0 + LEASE) });
    expect(e.attempts[0]!.error).toBe(
      `lease expired: agent-a claimed it at ${iso(T0)} and did not complete, fail or renew it by ${iso(T0 + LEASE)}`,
    );
    expect(leaseExpired(e, T0 + 10 * LEASE)).toBe(false);
    expect(leaseExpired(mk('p'), T0)).toBe(false);
  });

  it('an in-progress task without a lease counts as expired, with its own message', () => {
    const broken = mk('t1', { status: 'in-progress', lease: null });
    expect(leaseExpired(broken, T0)).toBe(true);
    const e = expireLease(broken, T0, 2);
    expect(e).toMatchObject({ status: 'failed', failures: 1, lease: null });
  });

  it('expired leases alone reach dead-letter', () => {
    let t = mk('t1');
    for (let i = 0; i < 2; i++) {
      t = claimTask(t, 'a', `tok-${i}`, T0 + i * 2 * LEASE, LEASE);
      t = expireLease(t, T0 + i * 2 * LEASE + LEASE, 2);
    }
    expect(t).toMatchObject({ status: 'dead-letter', failures: 2 });
    expect(t.attempts.map((a) => a.outcome)).toEqual(['expired', 'expired']);
  });

  it('release: back to pending with no lease, attempt released with the reason, failures kept', () => {
    const c = claimed('t1', 'a', 'tok-a', T0, { failures: 2, status: 'failed' });
    const r = releaseTask(c, 'tok-a', T0 + 1, 'wrong agent for this');
    expect(r).toMatchObject({ status: 'pending', lease: null, failures: 2, rev: c.rev + 1, updatedAt: iso(T0 + 1) });
    expect(r.attempts[0]).toMatchObject({ outcome: 'released', error: 'wrong agent for this', endedAt: iso(T0 + 1) });
    expect(releaseTask(c, 'tok-a', T0 + 1, null).attempts[0]!.error).toBeNull();
  });

  it('block: an in-progress task loses its lease and its attempt ends; a pending one keeps its attempts', () => {
    const c = claimed('t1');
    const b = blockTask(c, T0 + 3, 'needs an API key');
    expect(b).toMatchObject({
      status: 'blocked',
      lease: null,
      blockedReason: 'needs an API key',
      rev: c.rev + 1,
      updatedAt: iso(T0 + 3),
    });
    expect(b.attempts[0]).toMatchObject({
      outcome: 'released',
      error: 'blocked: needs an API key',
      endedAt: iso(T0 + 3),
    });
    expect(isReady(b, none)).toBe(false);
    const p = releaseTask(c, 'tok-a', T0 + 1, null);
    const bp = blockTask(p, T0 + 2, 'waiting');
    expect(bp.attempts).toEqual(p.attempts);
    expect(bp).toMatchObject({ status: 'blocked', blockedReason: 'waiting' });
  });

  it('unblock: pending again, the reason cleared', () => {
    const b = blockTask(mk('t1', { failures: 1 }), T0, 'x');
    const u = unblockTask(b, T0 + 9);
    expect(u).toMatchObject({
      status: 'pending',
      blockedReason: null,
      failures: 1,
      rev: b.rev + 1,
      updatedAt: iso(T0 + 9),
    });
    expect(isReady(u, none)).toBe(true);
  });

  it('retry: from dead-letter back to pending, failures reset, attempts kept', () => {
    let t = claimed('t1');
    t = failTask(t, 'tok-a', T0 + 1, 'no', 'failed', 1);
    expect(t.status).toBe('dead-letter');
    const r = retryTask(t, T0 + 2);
    expect(r).toMatchObject({
      status: 'pending',
      failures: 0,
      deadLetteredAt: null,
      rev: t.rev + 1,
      updatedAt: iso(T0 + 2),
    });
    expect(r.attempts).toEqual(t.attempts);
    const again = claimTask(r, 'b', 'tok-b', T0 + 3, LEASE);
    expect(again.attempts.at(-1)!.n).toBe(2);
    expect(failTask(again, 'tok-b', T0 + 4, 'still no', 'failed', 2)).toMatchObject({ status: 'failed', failures: 1 });
  });

  it('edit: changes the given fields only, ignoring undefined ones', () => {
    const t = mk('t1', { title: 'old', description: 'keep', acceptance: ['a'] });
    const e = editTask(t, T0 + 1, { title: 'new', priority: 'high', description: undefined, dependencies: ['t0'] });
    expect(e).toMatchObject({
      title: 'new',
      priority: 'high',
      description: 'keep',
      dependencies: ['t0'],
      acceptance: ['a'],
      status: 'pending',
      rev: 1,
      updatedAt: iso(T0 + 1),
    });
    expect(Object.keys(e).sort()).toEqual(Object.keys(t).sort());
  });

  it('every transition bumps rev by one and stamps updatedAt', () => {
    const c = claimed('t1', 'a', 'tok-a', T0, { rev: 7 });
    const at = T0 + 42;
    const results: [string, Task, Task][] = [
      ['claim', mk('t', { rev: 7 }), claimTask(mk('t', { rev: 7 }), 'a', 'k', at, LEASE)],
      ['renew', c, renewLease(c, at, LEASE)],
      ['complete', c, completeTask(c, 'tok-a', at, 's', [])],
      ['fail', c, failTask(c, 'tok-a', at, 'e', 'failed', 5)],
      ['expire', c, expireLease(c, at, 5)],
      ['release', c, releaseTask(c, 'tok-a', at, null)],
      ['block', c, blockTask(c, at, 'r')],
      ['unblock', blockTask(c, T0, 'r'), unblockTask(blockTask(c, T0, 'r'), at)],
      ['retry', failTask(c, 'tok-a', T0, 'e', 'failed', 1), retryTask(failTask(c, 'tok-a', T0, 'e', 'failed', 1), at)],
      ['edit', c, editTask(c, at, { title: 'x' })],
    ];
    for (const [name, before, after] of results) {
      expect(after.rev, name).toBe(before.rev + 1);
      expect(after.updatedAt, name).toBe(iso(at));
      expect(after.createdAt, name).toBe(before.createdAt);
    }
  });

  it(`keeps at most ${MAX_ERROR_CHARS} characters of an error`, () => {
    const long = `${'x'.repeat(MAX_ERROR_CHARS - 1)}yz${'w'.repeat(3000)}`;
    const f = failTask(claimed('t1'), 'tok-a', T0, long, 'failed', 5);
    expect(f.attempts[0]!.error).toBe(long.slice(0, MAX_ERROR_CHARS));
    expect(f.attempts[0]!.error!.length).toBe(MAX_ERROR_CHARS);
    expect(f.attempts[0]!.error!.endsWith('xy')).toBe(true);
    const exact = 'e'.repeat(MAX_ERROR_CHARS);
    expect(failTask(claimed('t1'), 'tok-a', T0, exact, 'failed', 5).attempts[0]!.error).toBe(exact);
  });

  it(`keeps the last ${MAX_ATTEMPTS_KEPT} attempts, numbering on`, () => {
    let t = mk('t1');
    const total = MAX_ATTEMPTS_KEPT + 12;
    for (let i = 1; i <= total; i++) {
      t = claimTask(t, 'a', `tok-${i}`, T0 + i, LEASE);
      if (i < total) t = releaseTask(t, `tok-${i}`, T0 + i, null);
    }
    expect(t.attempts).toHaveLength(MAX_ATTEMPTS_KEPT);
    expect(t.attempts[0]!.n).toBe(total - MAX_ATTEMPTS_KEPT + 1);
    expect(t.attempts.at(-1)).toMatchObject({ n: total, token: `tok-${total}`, outcome: null });
    expect(t.attempts.map((a) => a.n)).toEqual(
      Array.from({ length: MAX_ATTEMPTS_KEPT }, (_, i) => total - MAX_ATTEMPTS_KEPT + 1 + i),
    );
    // A token whose attempt fell off the history is one that never held the task, as far as the record knows.
    expect(checkHolder(t, 'tok-1', null)).toMatchObject({
      ok: false,
      repeat: false,
      reason: expect.stringMatching(/never held t1/),
    });
    expect(checkHolder(t, `tok-${total}`, 'completed')).toEqual({ ok: true });
  });
});

// ---- the holder's token -------------------------------------------------------------------------------------

describe('checkHolder', () => {
  it('accepts the holder', () => {
    const c = claimed('t1');
    for (const o of ['completed', 'failed', null] as const) expect(checkHolder(c, 'tok-a', o)).toEqual({ ok: true });
  });

  it('reports a same-token repeat of complete or fail as a repeat', () => {
    const done = completeTask(claimed('t1'), 'tok-a', T0 + 1, 's', []);
    expect(checkHolder(done, 'tok-a', 'completed')).toEqual({ ok: false, repeat: true });
    const failed = failTask(claimed('t1'), 'tok-a', T0 + 1, 'e', 'failed', 3);
    expect(checkHolder(failed, 'tok-a', 'failed')).toEqual({ ok: false, repeat: true });
    // Still a repeat after someone else took the task over.
    const reclaimed = claimTask(failed, 'agent-b', 'tok-b', T0 + 2, LEASE);
    expect(checkHolder(reclaimed, 'tok-a', 'failed')).toEqual({ ok: false, repeat: true });
  });

  it('refuses a different operation after the attempt ended, saying how it ended', () => {
    const failed = failTask(claimed('t1'), 'tok-a', T0 + 1, 'e', 'failed', 3);
    expect(checkHolder(failed, 'tok-a', 'completed')).toEqual({
      ok: false,
      repeat: false,
      reason: 't1 is no longer yours (your attempt ended: failed; it is failed now)',
    });
    const released = releaseTask(claimed('t1'), 'tok-a', T0 + 1, null);
    expect(checkHolder(released, 'tok-a', 'completed')).toEqual({
      ok: false,
      repeat: false,
      reason: 't1 is no longer yours (your attempt ended: released; it is pending now)',
    });
    // release/renew/block never count as repeats
    expect(checkHolder(released, 'tok-a', null)).toMatchObject({ ok: false, repeat: false });
    const done = completeTask(claimed('t1'), 'tok-a', T0 + 1, 's', []);
    expect(checkHolder(done, 'tok-a', null)).toMatchObject({
      ok: false,
      repeat: false,
      reason: expect.stringMatching(/no longer yours.*completed/),
    });
  });

  it('refuses a forged token: it never held the task', () => {
    const c = claimed('t1');
    const r = checkHolder(c, 'forged', 'completed');
    expect(r).toEqual({
      ok: false,
      repeat: false,
      reason: 'that token never held t1: use the token loki_task_claim returned',
    });
    expect(checkHolder(mk('t1'), 'tok-a', 'failed')).toMatchObject({
      ok: false,
      repeat: false,
      reason: expect.stringMatching(/never held/),
    });
    expect(checkHolder(c, '', null)).toMatchObject({
      ok: false,
      repeat: false,
      reason: expect.stringMatching(/never held/),
    });
  });

  it('refuses a lease that expired, naming the new holder when it was reclaimed', () => {
    const expired = expireLease(claimed('t1', 'agent-a', 'tok-a'), T0 + LEASE, 5);
    expect(checkHolder(expired, 'tok-a', 'completed')).toEqual({
      ok: false,
      repeat: false,
      reason: 'your lease on t1 expired; do not finish it, claim another task (loki_task_claim)',
    });
    const reclaimed = claimTask(expired, 'agent-b', 'tok-b', T0 + LEASE + 1, LEASE);
    expect(checkHolder(reclaimed, 'tok-a', 'completed')).toEqual({
      ok: false,
      repeat: false,
      reason:
        'your lease on t1 expired and agent-b holds it now; do not finish it, claim another task (loki_task_claim)',
    });
    expect(checkHolder(reclaimed, 'tok-a', 'failed')).toMatchObject({
      ok: false,
      repeat: false,
      reason: expect.stringMatching(/agent-b holds it now/),
    });
    expect(checkHolder(reclaimed, 'tok-b', 'completed')).toEqual({ ok: true });
  });

  it('a lease whose time ran out still holds until something expires it', () => {
    const c = claimed('t1');
    expect(leaseExpired(c, T0 + 10 * LEASE)).toBe(true);
    expect(checkHolder(c, 'tok-a', 'completed')).toEqual({ ok: true });
  });
});

// ---- dependencies ---------------------------------------------------------------------------------------------

describe('checkDependencies / findCycle', () => {
  it('lists unknown dependencies', () => {
    const t = mk('t3', { dependencies: ['t1', 'x', 'y'] });
    expect(() => checkDependencies([t], lookupOf([mk('t1'), t]))).toThrow(
      new TaskRuleError('t3 depends on unknown tasks x, y: add them first (or in the same batch) or fix the id'),
    );
    const one = mk('t4', { dependencies: ['nope'] });
    expect(() => checkDependencies([one], lookupOf([one]))).toThrow(
      't4 depends on unknown task nope: add it first (or in the same batch) or fix the id',
    );
    try {
      checkDependencies([one], lookupOf([one]));
    } catch (err) {
      expect(err).toBeInstanceOf(TaskRuleError);
      expect((err as Error).name).toBe('TaskRuleError');
    }
  });

  it('names a cycle exactly', () => {
    const a = mk('a', { dependencies: ['b'] });
    const b = mk('b', { dependencies: ['c'] });
    const c = mk('c', { dependencies: ['a'] });
    const lookup = lookupOf([a, b, c]);
    expect(() => checkDependencies([a], lookup)).toThrow(
      new TaskRuleError('dependency cycle: a -> b -> c -> a; remove one of these dependencies'),
    );
    expect(() => checkDependencies([c], lookup)).toThrow('dependency cycle: c -> a -> b -> c;');
    // A cycle behind an acyclic prefix is named from where it closes.
    const s = mk('s', { dependencies: ['x'] });
    const x = mk('x', { dependencies: ['a'] });
    expect(() => checkDependencies([s], lookupOf([s, x, a, b, c]))).toThrow('dependency cycle: a -> b -> c -> a;');
  });

  it('refuses a self-dependency', () => {
    const t = mk('t1', { dependencies: ['t1'] });
    expect(() => checkDependencies([t], lookupOf([t]))).toThrow(
      'dependency cycle: t1 -> t1; remove one of these dependencies',
    );
  });

  it('accepts a diamond and a deep lattice of diamonds without a false cycle, fast', () => {
    const d = [
      mk('a', { dependencies: ['b', 'c'] }),
      mk('b', { dependencies: ['d'] }),
      mk('c', { dependencies: ['d'] }),
      mk('d'),
    ];
    expect(() => checkDependencies(d, lookupOf(d))).not.toThrow();
    // 40 layers of two tasks, each depending on both of the layer below: 2^40 paths, linear work.
    const tasks: Task[] = [];
    for (let layer = 0; layer < 40; layer++) {
      for (const side of ['l', 'r'])
        tasks.push(mk(`${side}${layer}`, { dependencies: layer === 0 ? [] : [`l${layer - 1}`, `r${layer - 1}`] }));
    }
    const started = performance.now();
    expect(() => checkDependencies(tasks, lookupOf(tasks))).not.toThrow();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('walks a chain of 10,000 without overflowing the stack, and finds the cycle that closes it', () => {
    const n = 10_000;
    const chain = Array.from({ length: n }, (_, i) => mk(`t${i}`, { dependencies: i + 1 < n ? [`t${i + 1}`] : [] }));
    expect(() => checkDependencies(chain, lookupOf(chain))).not.toThrow();
    expect(() => checkDependencies([chain[0]!], lookupOf(chain))).not.toThrow();
    const closed = [...chain.slice(0, n - 1), mk(`t${n - 1}`, { dependencies: ['t0'] })];
    const lookup = lookupOf(closed);
    const cycle = findCycle([`t${n - 1}`], (id) => lookup(id)?.dependencies ?? []);
    expect(cycle).toHaveLength(n + 1);
    expect(cycle![0]).toBe(`t${n - 1}`);
    expect(cycle![1]).toBe('t0');
    expect(cycle!.at(-1)).toBe(`t${n - 1}`);
    expect(() => checkDependencies([closed.at(-1)!], lookup)).toThrow(
      /^dependency cycle: t9999 -> t0 -> t1 -> .* -> t9998 -> t9999; remove one/,
    );
  });

  it('findCycle only reports cycles reachable from the starts', () => {
    const graph: Record<string, string[]> = { a: ['b'], b: [], x: ['y'], y: ['x'] };
    const deps = (id: string) => graph[id] ?? [];
    expect(findCycle(['a'], deps)).toBeUndefined();
    expect(findCycle(['a', 'x'], deps)).toEqual(['x', 'y', 'x']);
    expect(findCycle([], deps)).toBeUndefined();
  });

  it('checks unknown ids before cycles, over the whole batch', () => {
    const a = mk('a', { dependencies: ['b'] });
    const b = mk('b', { dependencies: ['a', 'ghost'] });
    expect(() => checkDependencies([a, b], lookupOf([a, b]))).toThrow(/b depends on unknown task ghost/);
  });
});

// ---- model-based ----------------------------------------------------------------------------------------------

/** The reference model: what the queue should look like, written independently of domain/tasks.ts. */
interface ModelTask {
  id: string;
  seq: number;
  priority: number; // index into critical..low
  phase: Phase;
  deps: string[];
  status: TaskState;
  failures: number;
  lease: { token: string; agent: string; expires: number } | null;
  attempts: { token: string; outcome: Attempt['outcome'] }[];
}

type TokenChoice = 'current' | 'stale' | 'forged';
type Op =
  | { k: 'add'; pri: number; phase: number; deps: number[] }
  | { k: 'claim'; agent: number }
  | { k: 'complete' | 'fail' | 'release' | 'block'; task: number; tok: TokenChoice; pick: number }
  | { k: 'unblock' | 'retry'; task: number }
  | { k: 'edit'; task: number; pri: number; deps: number[] | null }
  | { k: 'tick'; ms: number }
  | { k: 'phase'; to: number };

const tokenChoice = fc.constantFrom<TokenChoice>('current', 'current', 'stale', 'forged');
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('add' as const),
      pri: fc.nat(3),
      phase: fc.nat(12),
      deps: fc.array(fc.nat(), { maxLength: 3 }),
    }),
  },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('claim' as const), agent: fc.nat(2) }) },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('complete' as const), task: fc.nat(), tok: tokenChoice, pick: fc.nat() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ k: fc.constant('fail' as const), task: fc.nat(), tok: tokenChoice, pick: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('release' as const), task: fc.nat(), tok: tokenChoice, pick: fc.nat() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('block' as const), task: fc.nat(), tok: tokenChoice, pick: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unblock' as const), task: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('retry' as const), task: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('edit' as const),
      task: fc.nat(),
      pri: fc.nat(3),
      deps: fc.option(fc.array(fc.nat(), { maxLength: 3 }), { nil: null }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 2 * LEASE }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('phase' as const), to: fc.nat(8) }) },
);

class Harness {
  now = T0;
  readonly tasks = new Map<string, Task>();
  readonly model = new Map<string, ModelTask>();
  readonly ids: string[] = [];
  readonly allTokens = new Map<string, string[]>();
  readonly rev = new Map<string, number>();
  /** For each claim of a task: were all its dependencies completed at that moment? */
  readonly depsDoneAtClaim = new Map<string, boolean>();
  run: { tier: Tier; phase: Phase } | undefined;
  private tokens = 0;

  constructor(
    readonly maxRetries: number,
    readonly tier: Tier | null,
  ) {
    this.run = tier ? { tier, phase: TIER_PHASES[tier][0]! } : undefined;
  }

  private put(t: Task): void {
    expect(t.rev).toBe((this.rev.get(t.id) ?? -1) + 1);
    this.rev.set(t.id, t.rev);
    this.tasks.set(t.id, t);
  }

  private lookup = (id: string) => this.tasks.get(id);

  // -- model rules, independent of the code under test --
  private mAllowed(m: ModelTask): boolean {
    if (!this.run || this.run.phase === 'GROWTH') return true;
    const list = TIER_PHASES[this.run.tier];
    const at = PHASES.indexOf(m.phase);
    const eff = list.find((p) => PHASES.indexOf(p) >= at) ?? list[list.length - 1]!;
    return list.indexOf(eff) <= list.indexOf(this.run.phase);
  }
  private mReady(m: ModelTask): boolean {
    return (
      (m.status === 'pending' || m.status === 'failed') &&
      m.deps.every((d) => this.model.get(d)?.status === 'completed')
    );
  }
  private mBest(): ModelTask | undefined {
    const key = (m: ModelTask) => [m.priority, m.status === 'failed' ? 1 : 0, m.seq];
    return [...this.model.values()]
      .filter((m) => this.mReady(m) && this.mAllowed(m))
      .sort((a, b) => {
        const ka = key(a);
        const kb = key(b);
        for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
        return 0;
      })[0];
  }
  private mEnd(m: ModelTask, token: string, outcome: NonNullable<Attempt['outcome']>): void {
    const a = m.attempts.find((x) => x.token === token && x.outcome === null);
    if (a) a.outcome = outcome;
  }
  private mFail(m: ModelTask, outcome: 'failed' | 'expired'): void {
    this.mEnd(m, m.lease?.token ?? '', outcome);
    m.failures++;
    m.status = m.failures >= this.maxRetries ? 'dead-letter' : 'failed';
    m.lease = null;
  }
  /** Would the deps of `id`, replaced by `deps`, close a cycle? */
  private mCycle(id: string, deps: string[]): boolean {
    const depsOf = (x: string) => (x === id ? deps : (this.model.get(x)?.deps ?? []));
    const seen = new Set<string>();
    const stack = [...deps];
    while (stack.length) {
      const x = stack.pop()!;
      if (x === id) return true;
      if (seen.has(x)) continue;
      seen.add(x);
      stack.push(...depsOf(x));
    }
    return false;
  }

  private pickTask(n: number): string | undefined {
    return this.ids.length ? this.ids[n % this.ids.length] : undefined;
  }

  private pickToken(id: string, choice: TokenChoice, pick: number): string {
    const m = this.model.get(id)!;
    const all = this.allTokens.get(id) ?? [];
    if (choice === 'current' && m.lease) return m.lease.token;
    if (choice !== 'forged' && all.length > 0) return all[pick % all.length]!;
    return 'forged-token';
  }

  /** Checks checkHolder against the model; returns whether the operation may go ahead. */
  private holder(id: string, token: string, repeatOutcome: Attempt['outcome']): boolean {
    const m = this.model.get(id)!;
    const got = checkHolder(this.tasks.get(id)!, token, repeatOutcome);
    if (m.status === 'in-progress' && m.lease?.token === token) {
      expect(got).toEqual({ ok: true });
      return true;
    }
    const mine = m.attempts.find((a) => a.token === token);
    if (mine && repeatOutcome !== null && mine.outcome === repeatOutcome) {
      expect(got).toEqual({ ok: false, repeat: true });
      return false;
    }
    expect(got.ok).toBe(false);
    const reason = (got as { reason: string }).reason;
    if (!mine) expect(reason).toBe(`that token never held ${id}: use the token loki_task_claim returned`);
    else if (mine.outcome === 'expired') {
      expect(reason).toMatch(new RegExp(`^your lease on ${id} expired`));
      if (m.lease) expect(reason).toContain(`and ${m.lease.agent} holds it now`);
      else expect(reason).not.toContain('holds it now');
    } else
      expect(reason).toBe(
        `${id} is no longer yours (your attempt ended: ${mine.outcome ?? 'taken over'}; it is ${m.status} now)`,
      );
    return false;
  }

  apply(op: Op): void {
    switch (op.k) {
      case 'add': {
        const id = `t${this.ids.length + 1}`;
        const deps = this.ids.length ? [...new Set(op.deps.map((d) => this.ids[d % this.ids.length]!))] : [];
        const phase = op.phase < PHASES.length ? PHASES[op.phase]! : 'DEVELOPMENT';
        const task = mk(id, {
          seq: this.ids.length + 1,
          priority: PRIORITIES[op.pri]!,
          phase,
          dependencies: deps,
          createdAt: iso(this.now),
          updatedAt: iso(this.now),
        });
        checkDependencies([task], (x) => (x === id ? task : this.tasks.get(x)));
        this.put(task);
        this.ids.push(id);
        this.model.set(id, {
          id,
          seq: task.seq,
          priority: op.pri,
          phase,
          deps,
          status: 'pending',
          failures: 0,
          lease: null,
          attempts: [],
        });
        break;
      }
      case 'claim': {
        // As the queue does: put back (or dead-letter) every lease whose time is up, then choose.
        for (const t of [...this.tasks.values()])
          if (leaseExpired(t, this.now)) this.put(expireLease(t, this.now, this.maxRetries));
        for (const m of this.model.values())
          if (m.status === 'in-progress' && m.lease!.expires <= this.now) this.mFail(m, 'expired');
        const picked = pickNext(this.tasks.values(), this.lookup, (t) => phaseAllows(t, this.run));
        const best = this.mBest();
        expect(picked?.id).toBe(best?.id);
        if (!picked) break;
        for (const other of this.tasks.values()) {
          if (other !== picked && isReady(other, this.lookup) && phaseAllows(other, this.run))
            expect(claimOrder(picked, other)).toBeLessThan(0);
        }
        const depsDone = picked.dependencies.every((d) => this.tasks.get(d)?.status === 'completed');
        expect(depsDone).toBe(true);
        this.depsDoneAtClaim.set(picked.id, depsDone);
        const token = `k${++this.tokens}`;
        const agent = `agent-${op.agent}`;
        this.put(claimTask(picked, agent, token, this.now, LEASE));
        this.allTokens.set(picked.id, [...(this.allTokens.get(picked.id) ?? []), token]);
        const m = this.model.get(picked.id)!;
        m.status = 'in-progress';
        m.lease = { token, agent, expires: this.now + LEASE };
        m.attempts = [...m.attempts, { token, outcome: null }].slice(-MAX_ATTEMPTS_KEPT);
        break;
      }
      case 'complete':
      case 'fail':
      case 'release': {
        const id = this.pickTask(op.task);
        if (!id) break;
        const token = this.pickToken(id, op.tok, op.pick);
        const repeatOutcome = op.k === 'complete' ? 'completed' : op.k === 'fail' ? 'failed' : null;
        if (!this.holder(id, token, repeatOutcome)) break;
        const t = this.tasks.get(id)!;
        const m = this.model.get(id)!;
        if (op.k === 'complete') {
          this.put(completeTask(t, token, this.now, 'done', []));
          this.mEnd(m, token, 'completed');
          m.status = 'completed';
          m.lease = null;
        } else if (op.k === 'fail') {
          this.put(failTask(t, token, this.now, `error ${this.now}`, 'failed', this.maxRetries));
          this.mFail(m, 'failed');
        } else {
          this.put(releaseTask(t, token, this.now, null));
          this.mEnd(m, token, 'released');
          m.status = 'pending';
          m.lease = null;
        }
        break;
      }
      case 'block': {
        const id = this.pickTask(op.task);
        if (!id) break;
        const m = this.model.get(id)!;
        if (m.status === 'in-progress') {
          if (!this.holder(id, this.pickToken(id, op.tok, op.pick), null)) break;
        } else if (m.status !== 'pending' && m.status !== 'failed') break;
        this.put(blockTask(this.tasks.get(id)!, this.now, 'waiting for a human'));
        if (m.lease) this.mEnd(m, m.lease.token, 'released');
        m.status = 'blocked';
        m.lease = null;
        break;
      }
      case 'unblock':
      case 'retry': {
        const id = this.pickTask(op.task);
        if (!id) break;
        const m = this.model.get(id)!;
        if (op.k === 'unblock' && m.status === 'blocked') {
          this.put(unblockTask(this.tasks.get(id)!, this.now));
          m.status = 'pending';
        } else if (op.k === 'retry' && m.status === 'dead-letter') {
          this.put(retryTask(this.tasks.get(id)!, this.now));
          m.status = 'pending';
          m.failures = 0;
        }
        break;
      }
      case 'edit': {
        const id = this.pickTask(op.task);
        if (!id) break;
        const m = this.model.get(id)!;
        if (m.status === 'completed') break; // the queue refuses to edit completed tasks
        const deps = op.deps ? [...new Set(op.deps.map((d) => this.ids[d % this.ids.length]!))] : undefined;
        const edited = editTask(this.tasks.get(id)!, this.now, { priority: PRIORITIES[op.pri]!, dependencies: deps });
        if (deps && this.mCycle(id, deps)) {
          let message = '';
          try {
            checkDependencies([edited], (x) => (x === id ? edited : this.tasks.get(x)));
          } catch (err) {
            expect(err).toBeInstanceOf(TaskRuleError);
            message = (err as Error).message;
          }
          const named = /^dependency cycle: (.+); remove one of these dependencies$/.exec(message);
          expect(named, message).not.toBeNull();
          const path = named![1]!.split(' -> ');
          expect(path[0]).toBe(path.at(-1));
          expect(path).toContain(id);
          for (let i = 0; i + 1 < path.length; i++) {
            const from = path[i]!;
            expect(from === id ? deps : this.model.get(from)!.deps).toContain(path[i + 1]);
          }
          break;
        }
        if (deps) checkDependencies([edited], (x) => (x === id ? edited : this.tasks.get(x)));
        this.put(edited);
        m.priority = op.pri;
        if (deps) m.deps = deps;
        break;
      }
      case 'tick':
        this.now += op.ms;
        break;
      case 'phase': {
        if (!this.tier) break;
        const list = [...TIER_PHASES[this.tier], 'GROWTH' as const];
        this.run = { tier: this.tier, phase: list[op.to % list.length]! };
        break;
      }
    }
  }

  check(): void {
    const counts = countStates(this.tasks.values());
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(this.tasks.size);
    for (const t of this.tasks.values()) {
      const m = this.model.get(t.id)!;
      const where = `${t.id} (${t.status})`;
      expect(
        TASK_STATES.filter((s) => s === t.status),
        where,
      ).toHaveLength(1);
      expect(t.status, where).toBe(m.status);
      expect(t.failures, where).toBe(m.failures);
      expect(t.lease?.token ?? null, where).toBe(m.lease?.token ?? null);
      expect(t.priority, where).toBe(PRIORITIES[m.priority]);
      expect(t.dependencies, where).toEqual(m.deps);
      expect(
        t.attempts.map((a) => [a.token, a.outcome]),
        where,
      ).toEqual(m.attempts.map((a) => [a.token, a.outcome]));
      // exactly one status, with the fields that go with it
      expect(t.status === 'in-progress', where).toBe(t.lease !== null);
      expect(t.failures, where).toBeLessThanOrEqual(this.maxRetries);
      expect(t.status === 'dead-letter', where).toBe(t.failures >= this.maxRetries);
      expect(t.status === 'dead-letter', where).toBe(t.deadLetteredAt !== null);
      expect(t.status === 'blocked', where).toBe(t.blockedReason !== null);
      expect(t.status === 'completed', where).toBe(t.completion !== null);
      // attempts: numbered on, capped, and only the holder's is open
      expect(t.attempts.length, where).toBeLessThanOrEqual(MAX_ATTEMPTS_KEPT);
      t.attempts.forEach((a, i) => i > 0 && expect(a.n, where).toBe(t.attempts[i - 1]!.n + 1));
      const open = t.attempts.filter((a) => a.outcome === null);
      expect(
        open.map((a) => a.token),
        where,
      ).toEqual(t.lease ? [t.lease.token] : []);
      if (t.status === 'completed') {
        expect(this.depsDoneAtClaim.get(t.id), where).toBe(true);
        expect(t.attempts.at(-1)!.outcome, where).toBe('completed');
      }
    }
  }
}

describe('model-based: random queue histories', () => {
  it('agree with a reference model and keep the invariants after every step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom<Tier | null>(null, ...TIERS),
        fc.array(opArb, { minLength: 1, maxLength: 80 }),
        (maxRetries, tier, ops) => {
          const h = new Harness(maxRetries, tier);
          for (const op of ops) {
            h.apply(op);
            h.check();
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reaches every state in a typical run (the generator is not vacuous)', () => {
    const seen = new Set<TaskState>();
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 40, maxLength: 80 }), (ops) => {
        const h = new Harness(2, null);
        for (const op of ops) {
          h.apply(op);
          for (const t of h.tasks.values()) seen.add(t.status);
        }
      }),
      { numRuns: 100, seed: 42 },
    );
    expect([...seen].sort()).toEqual([...TASK_STATES].sort());
  });
});

describe('checkSeedDrafts', () => {
  it('accepts a clean batch and refuses empty titles, duplicate ids, unknown dependencies and cycles before anything is written', async () => {
    const { checkSeedDrafts } = await import('../mcp-server/src/domain/tasks.js');
    expect(() =>
      checkSeedDrafts([
        { id: 't1', title: 'a' },
        { id: 't2', title: 'b', dependencies: ['t1'] },
      ]),
    ).not.toThrow();
    expect(() => checkSeedDrafts([{ id: 't1', title: '  ' }])).toThrow(/empty title/);
    expect(() =>
      checkSeedDrafts([
        { id: 't1', title: 'a' },
        { id: 't1', title: 'b' },
      ]),
    ).toThrow(/appears twice/);
    expect(() => checkSeedDrafts([{ id: 't1', title: 'a', dependencies: ['t9'] }])).toThrow(/unknown task t9/);
    expect(() =>
      checkSeedDrafts([
        { id: 't1', title: 'a', dependencies: ['t2'] },
        { id: 't2', title: 'b', dependencies: ['t1'] },
      ]),
    ).toThrow(/cycle: t1 -> t2 -> t1/);
  });
});
