/** The task tools through the real SDK client: seeding, order, leases and tokens, retries, updates, status, CLI. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLAIMABLE_STATES,
  OPEN_STATES,
  countStates,
  effectivePhase,
  phaseAllows,
  pickNext,
  unmetDependencies,
  type Task,
} from '../mcp-server/src/domain/tasks.js';
import { Project } from '../mcp-server/src/project.js';
import type { RunState } from '../mcp-server/src/run/records.js';
import {
  DIST,
  auditLines,
  connect,
  dbRows,
  docOnDisk,
  openDb,
  snapshot,
  structured,
  taskOnDisk,
  tempProject,
  text,
  type Connected,
  type TempProject,
} from './helpers.js';

let p: TempProject | undefined;
let c: Connected | undefined;
afterEach(async () => {
  await c?.close();
  c = undefined;
  p?.cleanup();
  p = undefined;
});

interface Claim {
  task: { id: string; title: string; attempt: number; previousErrors: string[]; acceptance: string[] } | null;
  token: string | null;
  reason: string | null;
  leaseExpiresAt: string | null;
}
interface Row {
  id: string;
  status: string;
  priority: string;
  title: string;
  waitingOn: string[];
}

const SPEC = `# Shop

## Features
### Catalogue (must have)
- List products with prices
  - paginated, 20 per page
- [ ] Search products (P2)
- [x] Logo (done already)

## Non-goals
- Payments
`;

async function begin(env: NodeJS.ProcessEnv = {}, tier = 'simple'): Promise<Connected> {
  p = tempProject({ git: true, files: { 'prd.md': SPEC } });
  c = await connect(p, env);
  const r = await c.call('loki_start', { spec: 'prd.md', tier });
  expect(r.isError, text(r)).toBeFalsy();
  // BOOTSTRAP had nothing to do and passed at the start; these tests work the queue from it, with the spec's
  // DEVELOPMENT tasks held for their phase, so the run steps back (allowed with a reason).
  const back = await c.call('loki_phase_advance', { to: 'BOOTSTRAP', reason: 'queue tests start in BOOTSTRAP' });
  expect(structured<{ ok: boolean }>(back).ok, text(back)).toBe(true);
  return c;
}

async function claim(args: Record<string, unknown> = {}): Promise<Claim> {
  return structured<Claim>(await c!.call('loki_task_claim', args));
}

async function rows(args: Record<string, unknown> = {}): Promise<Row[]> {
  return structured<{ rows: Row[] }>(await c!.call('loki_task_list', args)).rows;
}

function taskFile(id: string) {
  return taskOnDisk<Record<string, unknown>>(p!.root, id)!;
}

function archivedIds(runId: string): string[] {
  return dbRows<{ id: string }>(p!.root, 'SELECT id FROM task_archive WHERE run_id = ? ORDER BY id', runId).map(
    (r) => r.id,
  );
}

describe('seeding from the spec', () => {
  it('loki_start queues the spec tasks in document order, with acceptance, priority and source', async () => {
    await begin();
    const list = await rows();
    expect(list.map((r) => [r.id, r.title, r.priority, r.status])).toEqual([
      ['t1', 'List products with prices', 'high', 'pending'],
      ['t2', 'Search products (P2)', 'medium', 'pending'],
    ]);
    const full = structured<{
      tasks: { acceptance: string[]; source: { kind: string; section: string }; phase: string }[];
    }>(await c!.call('loki_task_list', { ids: ['t1'] }));
    expect(full.tasks[0]).toMatchObject({
      acceptance: ['paginated, 20 per page'],
      source: { kind: 'spec', section: 'Features > Catalogue (must have)' },
      phase: 'DEVELOPMENT',
    });
    expect(auditLines(p!.root).find((e) => e.action === 'run.start')?.data).toMatchObject({ tasks: 2 });
  });

  it('the same spec gives the same tasks in another project', async () => {
    await begin();
    const first = await rows();
    await c!.close();
    c = undefined;
    p!.cleanup();
    await begin();
    expect(await rows()).toEqual(first);
  });

  it('a restart with a new spec archives the old queue under its run', async () => {
    await begin();
    const oldRun = docOnDisk<{ runId: string }>(p!.root, 'run')!.runId;
    fs.writeFileSync(path.join(p!.root, 'v2.md'), '# V2\n- only this\n');
    const r = structured<{ tasks: { queued: number } }>(await c!.call('loki_start', { spec: 'v2.md', restart: true }));
    expect(r.tasks.queued).toBe(1);
    expect((await rows()).map((x) => x.title)).toEqual(['only this']);
    expect(archivedIds(oldRun)).toEqual(['t1', 't2']);
  });

  it("resuming a run whose seeding never happened sets the previous run's queue aside and seeds this one", async () => {
    await begin();
    const old = docOnDisk<{ runId: string }>(p!.root, 'run')!.runId;
    // As if a new run had been recorded without its queue (the transaction of a 0.1-era crash, or a bug).
    const db = openDb(p!.root, false);
    db.prepare(`UPDATE docs SET body = json_set(body, '$.runId', 'r-20261123-cafe0001') WHERE key = 'run'`).run();
    db.close();
    const r = structured<{ resumed: boolean; tasks: { queued: number } }>(await c!.call('loki_start', {}));
    expect(r).toMatchObject({ resumed: true, tasks: { queued: 2 } });
    expect(taskFile('t1')).toMatchObject({ runId: 'r-20261123-cafe0001' });
    expect(archivedIds(old)).toEqual(['t1', 't2']);
  });

  it('resuming does not queue the spec twice', async () => {
    await begin();
    const again = structured<{ resumed: boolean; tasks: { queued: number } }>(await c!.call('loki_start', {}));
    expect(again).toMatchObject({ resumed: true, tasks: { queued: 0 } });
    expect(await rows()).toHaveLength(2);
  });
});

describe('claiming', () => {
  it('takes the highest priority ready task of the current phase, first come first served, and hands out a token', async () => {
    await begin();
    await c!.call('loki_task_add', {
      tasks: [
        { id: 'low', title: 'low one', priority: 'low' },
        { id: 'crit', title: 'critical one', priority: 'critical', dependencies: ['dep'] },
        { id: 'dep', title: 'dependency', priority: 'medium' },
        { id: 'high', title: 'high one', priority: 'high' },
      ],
    });
    // The run is in BOOTSTRAP: the spec's DEVELOPMENT tasks wait for their phase.
    const order: string[] = [];
    for (;;) {
      const r = await claim();
      if (!r.task) {
        expect(r.reason).toMatch(/no open tasks/);
        break;
      }
      expect(r.token).toMatch(/^[0-9a-f]{24}$/);
      order.push(r.task.id);
      await c!.call('loki_task_complete', { id: r.task.id, token: r.token, summary: 'ok' });
    }
    // crit waits on dep (medium); once dep is done crit outranks everything left. BOOTSTRAP's work done (the run
    // came back to it, and work was completed there since), it passed by itself, and the spec's DEVELOPMENT tasks
    // came next.
    expect(order.slice(0, 4)).toEqual(['high', 'dep', 'crit', 'low']);
    expect(order.slice(4).sort()).toEqual(['t1', 't2']);
  });

  it('can claim a named task, and refuses one that is not ready with the reason', async () => {
    await begin();
    await c!.call('loki_task_add', {
      tasks: [
        { id: 'a', title: 'a' },
        { id: 'b', title: 'b', dependencies: ['a'] },
      ],
    });
    expect((await claim({ taskId: 'b' })).reason).toMatch(/b waits on a/);
    const a = await claim({ taskId: 'a' });
    expect(a.task?.id).toBe('a');
    expect((await claim({ taskId: 'a' })).reason).toMatch(/a is in progress by s-/);
  });

  it('with every open task held, a claim says how many are in progress; with the rest blocked, it says so', async () => {
    p = tempProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# Held\n' });
    // The spec's own task belongs to a later phase: set it aside.
    for (const row of await rows()) await c.call('loki_task_update', { id: row.id, action: 'block', reason: 'later' });
    await c.call('loki_task_add', { tasks: ['a', 'b', 'c'].map((id) => ({ id, title: id })) });
    const held: string[] = [];
    let r = await claim();
    for (; r.task; r = await claim()) held.push(r.task.id);
    expect(held).toEqual(['a', 'b', 'c']);
    expect(r.reason).toBe('no task is ready: 3 in progress by other agents, none pending');
    for (const id of held) {
      const { token } = taskFile(id).lease as { token: string };
      expect(text(await c.call('loki_task_complete', { id, token, summary: 'done' }))).toMatch(/Completed/);
    }
    expect((await claim()).reason).toMatch(/^no task is ready: 1 blocked/);
  });

  it('refuses to claim without a run, while paused, and after STOP', async () => {
    p = tempProject();
    c = await connect(p);
    expect(text(await c.call('loki_task_claim'))).toMatch(/no run yet: call loki_start/);
    await c.call('loki_start', { specText: '# X\n- thing\n' });
    fs.writeFileSync(path.join(p.root, '.loki/PAUSE'), '');
    expect(text(await c.call('loki_task_claim'))).toMatch(/paused/);
    fs.rmSync(path.join(p.root, '.loki/PAUSE'));
    fs.writeFileSync(path.join(p.root, '.loki/STOP'), '');
    expect(text(await c.call('loki_task_claim'))).toMatch(/STOP/);
  });
});

describe('leases and tokens', () => {
  it('completing twice with the same token is harmless; a stale holder cannot complete a re-claimed task', async () => {
    await begin({ LOKI_LEASE_MINUTES: '0.01' }); // 0.6 s
    await c!.call('loki_task_add', { tasks: [{ id: 'x', title: 'x' }] });
    const first = await claim({ agent: 'slow' });
    await new Promise((r) => setTimeout(r, 700));
    const second = await claim({ agent: 'fast' });
    expect(second.task?.id).toBe(first.task?.id);
    expect(second.task?.attempt).toBe(2);
    expect(second.task?.previousErrors[0]).toMatch(/#1 expired: lease expired: slow claimed it/);
    const stale = await c!.call('loki_task_complete', { id: 'x', token: first.token, summary: 'late' });
    expect(stale.isError).toBe(true);
    expect(text(stale)).toMatch(/your lease on x expired and fast holds it now; do not finish it/);
    const done = structured<{ repeated: boolean }>(
      await c!.call('loki_task_complete', { id: 'x', token: second.token, summary: 'done' }),
    );
    expect(done.repeated).toBe(false);
    const before = auditLines(p!.root).length;
    const again = structured<{ repeated: boolean }>(
      await c!.call('loki_task_complete', { id: 'x', token: second.token, summary: 'done' }),
    );
    expect(again.repeated).toBe(true);
    expect(auditLines(p!.root)).toHaveLength(before);
    expect(taskFile('x')).toMatchObject({ status: 'completed', completion: { agent: 'fast', summary: 'done' } });
  });

  it('complete with claimNext hands over the next task in the same call, and claims nothing while paused', async () => {
    await begin();
    await c!.call('loki_task_add', {
      tasks: [
        { id: 'one', title: 'one', priority: 'high' },
        { id: 'two', title: 'two' },
        { id: 'three', title: 'three', priority: 'low' },
      ],
    });
    const first = await claim();
    const r = structured<{ task: { id: string }; claimed: Claim }>(
      await c!.call('loki_task_complete', { id: first.task!.id, token: first.token, summary: 'done', claimNext: true }),
    );
    expect(r.task.id).toBe('one');
    expect(r.claimed.task?.id).toBe('two');
    expect(r.claimed.token).toMatch(/^[0-9a-f]{24}$/);
    const actions = auditLines(p!.root)
      .filter((e) => !String(e.action).startsWith('checkpoint.'))
      .slice(-2)
      .map((e) => `${e.action}:${e.target}`);
    expect(actions).toEqual(['task.complete:one', 'task.claim:two']);
    // The same call again (a retry after a lost answer): the same next task and token, not a second claim.
    const again = structured<{ claimed: Claim }>(
      await c!.call('loki_task_complete', { id: first.task!.id, token: first.token, summary: 'done', claimNext: true }),
    );
    expect(again.claimed).toMatchObject({ task: { id: 'two' }, token: r.claimed.token });
    expect(taskFile('three')).toMatchObject({ status: 'pending' });
    expect(auditLines(p!.root).filter((e) => e.action === 'task.claim')).toHaveLength(2);
    fs.writeFileSync(path.join(p!.root, '.loki/PAUSE'), '');
    const paused = structured<{ claimed: Claim }>(
      await c!.call('loki_task_complete', { id: 'two', token: r.claimed.token, summary: 'done', claimNext: true }),
    );
    expect(paused.claimed).toMatchObject({ task: null, reason: expect.stringMatching(/paused/) });
    expect(taskFile('two')).toMatchObject({ status: 'completed' });
    expect(taskFile('three')).toMatchObject({ status: 'pending' });
  });

  it('loki_status renews the leases of its own session once half the lease has passed', async () => {
    await begin({ LOKI_LEASE_MINUTES: '0.02' }); // 1.2 s
    await c!.call('loki_task_add', { tasks: [{ id: 'w', title: 'work' }] });
    const held = await claim();
    await new Promise((r) => setTimeout(r, 700));
    const b = structured<{ queue: { mine: { id: string; expiresAt: string }[] }; next: string }>(
      await c!.call('loki_status'),
    );
    expect(b.queue.mine[0]!.id).toBe('w');
    expect(Date.parse(b.queue.mine[0]!.expiresAt)).toBeGreaterThan(Date.parse(held.leaseExpiresAt!));
    expect(b.next).toMatch(/^finish w "work", then loki_task_complete \{"id":"w"\}/);
    expect(auditLines(p!.root).some((e) => e.action === 'task.renew')).toBe(true);
  });

  it('release gives the task back without counting a failure; renew needs the token', async () => {
    await begin();
    await c!.call('loki_task_add', { tasks: [{ id: 'r', title: 'r' }] });
    const h = await claim({ taskId: 'r' });
    expect(text(await c!.call('loki_task_update', { id: 'r', action: 'renew', token: 'nope' }))).toMatch(
      /never held r/,
    );
    const renewed = structured<{ task: { lease: { expiresAt: string } } }>(
      await c!.call('loki_task_update', { id: 'r', action: 'renew', token: h.token }),
    );
    expect(renewed.task.lease.expiresAt >= h.leaseExpiresAt!).toBe(true);
    const released = structured<{ task: { status: string; failures: number; attempts: { outcome: string }[] } }>(
      await c!.call('loki_task_update', { id: 'r', action: 'release', token: h.token, reason: 'wrong agent' }),
    );
    expect(released.task).toMatchObject({ status: 'pending', failures: 0 });
    expect(released.task.attempts[0]).toMatchObject({ outcome: 'released' });
    expect(JSON.stringify(released)).not.toContain(h.token!);
  });
});

describe('failures, retries and dead-letter', () => {
  it('a failed task is retried after fresh work, keeps its errors, and dead-letters at the limit', async () => {
    await begin({ LOKI_MAX_RETRIES: '2' });
    await c!.call('loki_task_add', {
      tasks: [
        { id: 'f', title: 'flaky', priority: 'high' },
        { id: 'g', title: 'steady', priority: 'high' },
      ],
    });
    const one = await claim();
    expect(one.task?.id).toBe('f');
    const failed = structured<{ task: { status: string }; failures: number }>(
      await c!.call('loki_task_fail', { id: 'f', token: one.token, error: 'TypeError: x is undefined' }),
    );
    expect(failed).toMatchObject({ task: { status: 'failed' }, failures: 1 });
    // Same priority: the fresh task goes first, then the retry, which carries the earlier error.
    expect((await claim()).task?.id).toBe('g');
    const retry = await claim();
    expect(retry.task).toMatchObject({ id: 'f', attempt: 2, previousErrors: ['#1 failed: TypeError: x is undefined'] });
    const dead = await c!.call('loki_task_fail', { id: 'f', token: retry.token, error: 'still broken' });
    expect(text(dead)).toMatch(/moved to dead-letter after 2 failures; move on/);
    expect(taskFile('f')).toMatchObject({ status: 'dead-letter', failures: 2 });
    const repeat = structured<{ repeated: boolean }>(
      await c!.call('loki_task_fail', { id: 'f', token: retry.token, error: 'still broken' }),
    );
    expect(repeat.repeated).toBe(true);
    const back = structured<{ task: { status: string; failures: number; attempts: unknown[] } }>(
      await c!.call('loki_task_update', { id: 'f', action: 'retry' }),
    );
    expect(back.task).toMatchObject({ status: 'pending', failures: 0 });
    expect(back.task.attempts).toHaveLength(2);
  });
});

describe('updates', () => {
  it('edits, reprioritises, blocks and unblocks; completed tasks stay as they were', async () => {
    await begin();
    await c!.call('loki_task_add', {
      tasks: [
        { id: 'a', title: 'a' },
        { id: 'b', title: 'b' },
      ],
    });
    await c!.call('loki_task_update', { id: 'b', priority: 'critical', acceptance: ['it works'] });
    expect((await claim()).task).toMatchObject({ id: 'b', acceptance: ['it works'] });
    expect(
      text(await c!.call('loki_task_update', { id: 'a', action: 'block', reason: 'needs an API key from the user' })),
    ).toMatch(/blocked/);
    expect((await claim()).reason).toMatch(/belong to later phases|blocked/);
    await c!.call('loki_task_update', { id: 'a', action: 'unblock' });
    const a = await claim();
    expect(a.task?.id).toBe('a');
    await c!.call('loki_task_complete', { id: 'a', token: a.token, summary: 'done' });
    expect(text(await c!.call('loki_task_update', { id: 'a', title: 'rewrite history' }))).toMatch(
      /completed and stays as it was done/,
    );
  });

  it('refuses a dependency edit that would close a cycle, naming it, and changes nothing', async () => {
    await begin();
    await c!.call('loki_task_add', {
      tasks: [
        { id: 'a', title: 'a' },
        { id: 'b', title: 'b', dependencies: ['a'] },
        { id: 'c', title: 'c', dependencies: ['b'] },
      ],
    });
    const before = snapshot(p!.root);
    const r = await c!.call('loki_task_update', { id: 'a', dependencies: ['c'] });
    expect(text(r)).toMatch(/dependency cycle: a -> c -> b -> a/);
    expect(snapshot(p!.root)).toEqual(before);
  });
});

describe('loki_status and phases', () => {
  it('shows counts, the next ready task and blocks the phase while its tasks are open', async () => {
    await begin();
    await c!.call('loki_phase_advance');
    const b = structured<{
      queue: { counts: Record<string, number>; next: { id: string }; openInPhase: number };
      next: string;
    }>(await c!.call('loki_status'));
    expect(b.queue).toMatchObject({ counts: { pending: 2 }, next: { id: 't1' }, openInPhase: 2 });
    expect(b.next).toMatch(/^loki_task_claim \{\} -- .*the next task is t1/);
    fs.writeFileSync(path.join(p!.root, 'shop.js'), 'export {}\n');
    expect(structured<{ reasons: string[] }>(await c!.call('loki_phase_advance')).reasons).toEqual([
      expect.stringMatching(/2 task\(s\) of this phase are still open \(t1, t2\)/),
    ]);
    expect(text(await c!.call('loki_status', { peek: true }))).toMatch(/Tasks: 2 pending, 0 in progress/);
  });

  it('a task changed outside loki-mode is refused by name, with the fix; nothing is moved aside or lost', async () => {
    await begin();
    const db = openDb(p!.root, false);
    db.prepare(`UPDATE tasks SET body = json_set(body, '$.attempts', 'many') WHERE id = 't2'`).run();
    db.close();
    const before = snapshot(p!.root);
    const r = await c!.call('loki_task_list', {});
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/task "t2" in \.loki\/loki\.db does not match its schema \(attempts: .*run loki doctor/);
    expect(snapshot(p!.root)).toEqual(before);
    // The tasks the change did not touch are still there, as they were.
    expect(taskFile('t1')).toMatchObject({ id: 't1', status: 'pending' });
  });
});

describe('the queue summary', () => {
  it('counted in SQL, it is what decoding every task and applying the domain rules gives, in a varied queue', () => {
    p = tempProject();
    const project = new Project({ root: p.root, env: p.env, actor: 'test' });
    try {
      const q = project.tasks();
      const PHASES = ['DEVELOPMENT', 'QA', 'DEPLOYMENT', 'BOOTSTRAP'] as const;
      const PRI = ['low', 'critical', 'medium', 'high'] as const;
      // 60 tasks, some depending on earlier ones, over four phases and priorities; then claimed, completed, failed
      // to dead-letter, blocked and expired in a fixed pattern.
      const drafts = Array.from({ length: 60 }, (_, i) => ({
        id: `k${i}`,
        title: `task ${i}`,
        phase: PHASES[i % 4],
        priority: PRI[(i * 7) % 4],
        dependencies: i % 5 === 0 && i > 0 ? [`k${i - 3}`, `k${i - 1}`] : i % 7 === 0 && i > 0 ? [`k${i - 7}`] : [],
      }));
      const runId = 'r-summary';
      q.add(drafts, runId, { phase: 'DEVELOPMENT', source: { kind: 'agent', section: null } });
      const run = { runId, tier: 'standard', phase: 'DEVELOPMENT' } as unknown as RunState;
      const claimOne = (agent: string) => q.claim({ agent, phase: undefined });
      // Ahead of everything in claim order, but of a phase after the run's: the summary's next must pass it over.
      q.add([{ id: 'late', title: 'late', phase: 'QA', priority: 'critical' }], runId, {
        phase: 'DEVELOPMENT',
        source: { kind: 'agent', section: null },
      });
      q.update({ id: 'late', edit: {}, action: 'block', reason: 'kept out of the claims below' });
      for (let i = 0; i < 30; i++) {
        const c1 = claimOne(`a${i % 3}`);
        if (!c1.task) break;
        const id = c1.task.id;
        if (i % 5 === 0) q.complete(id, c1.token!, 'done', []);
        else if (i % 5 === 1)
          for (let n = 0, held = c1; n < 6 && held.task && q.get(id)!.status !== 'dead-letter'; n++) {
            q.fail(id, held.token!, `boom ${n}`);
            held = q.claim({ agent: 'x', taskId: id });
          }
        else if (i % 5 === 2) q.update({ id, edit: {}, action: 'block', token: c1.token!, reason: 'waits' });
        else if (i % 5 === 3) {
          // Failed once, then done: its past failure no longer counts.
          q.fail(id, c1.token!, 'flaky');
          const again = q.claim({ agent: 'y', taskId: id });
          q.complete(id, again.token!, 'done at last', []);
        }
        // i % 5 === 4: left in progress
      }
      q.update({ id: 'late', edit: {}, action: 'unblock' });
      // A lease that ran out: the next claim ends that attempt as expired, and the task is left failed (claimable
      // again, after fresh work). Claimed by id, so 'late' stays first in claim order.
      const lapsed = q.claim({ agent: 'gone', taskId: 'k0' });
      project
        .openStore()
        .db.run(
          `UPDATE tasks SET body = json_set(body, '$.lease.expiresAt', '2000-01-01T00:00:00.000Z') WHERE id = ?`,
          lapsed.task!.id,
        );
      q.claim({ agent: 'after', taskId: 'k4' });
      // A task of another run (queues of earlier runs are archived; the counts filter by run all the same), failed.
      q.add([{ id: 'other', title: 'other run' }], 'r-other', {
        phase: 'DEVELOPMENT',
        source: { kind: 'agent', section: null },
      });
      const other = q.claim({ agent: 'o', taskId: 'other' });
      q.fail('other', other.token!, 'elsewhere');
      const all = q.list().tasks;
      expect(new Set(all.map((t) => t.status)).size).toBeGreaterThanOrEqual(5);
      // The reference: every task decoded, the pure rules of domain/tasks.ts and domain/notify.ts.
      const byId = new Map(all.map((t) => [t.id, t]));
      const lookup = (id: string) => byId.get(id);
      const claimable = all.filter((t) => CLAIMABLE_STATES.includes(t.status));
      const unmet = (t: Task) => unmetDependencies(t, lookup).length > 0;
      const ready = claimable.filter((t) => !unmet(t));
      const next = pickNext(all, lookup, (t) => phaseAllows(t, run));
      const s = q.summary(run);
      expect(s.counts).toEqual(countStates(all));
      expect(s.total).toBe(all.length);
      expect(s.inProgress.map((t) => t.id)).toEqual(all.filter((t) => t.status === 'in-progress').map((t) => t.id));
      expect(s.next?.id).toBe(next?.id);
      expect(s.openInPhase).toBe(
        all.filter((t) => OPEN_STATES.includes(t.status) && effectivePhase(t.phase, run.tier) === run.phase).length,
      );
      expect(s.laterPhases).toBe(ready.filter((t) => !phaseAllows(t, run)).length);
      expect(s.waiting).toBe(claimable.filter(unmet).length);
      expect(s.stuckOnDeadLetter).toEqual(
        claimable
          .filter((t) => unmet(t) && t.dependencies.some((d) => lookup(d)?.status === 'dead-letter'))
          .map((t) => t.id),
      );
      const ofRun = all.filter((t) => t.runId === runId);
      expect(s.failures).toEqual({
        failedAttempts: ofRun
          .filter((t) => t.status !== 'completed')
          .flatMap((t) => t.attempts)
          .filter((a) => a.outcome === 'failed' || a.outcome === 'expired').length,
        deadLetters: ofRun.filter((t) => t.status === 'dead-letter').length,
      });
      expect(all.some((t) => t.attempts.some((a) => a.outcome === 'expired'))).toBe(true);
      expect(all.filter((t) => t.status === 'failed' && t.runId === runId).length).toBeGreaterThan(0);
      expect(s.failures.deadLetters).toBeGreaterThan(0);
      expect(all.some((t) => t.status === 'completed' && t.attempts.some((a) => a.outcome === 'failed'))).toBe(true);
      expect(s.inProgress.length).toBeGreaterThan(0);
      expect(pickNext(all, lookup, () => true)?.id).toBe('late');
      expect(next?.id).not.toBe('late');
      expect(s.stuckOnDeadLetter.length + s.laterPhases + s.waiting).toBeGreaterThan(0);
    } finally {
      project.close();
    }
  });

  it('a task whose counted fields are not of their type is named as damaged, wherever it sits in the queue', () => {
    // Each damage, and whether the phase gate and the failure count, which read fewer fields, see it too.
    for (const [damage, phaseReads, failuresRead] of [
      [`json_set(body, '$.status', 'gone')`, true, true],
      [`json_remove(body, '$.dependencies')`, true, true],
      [`json_set(body, '$.dependencies', 'k1')`, true, true],
      [`json_set(body, '$.dependencies', json('[1]'))`, false, false],
      [`json_set(body, '$.phase', 'NOWHERE')`, true, true],
      [`json_set(body, '$.attempts', 'many')`, true, true],
      [`json_set(body, '$.attempts', json('["x"]'))`, false, true],
      [`json_set(body, '$.attempts', json('[1]'))`, false, true],
      // A key written twice: SQLite reads the first, the decoder the last.
      [`'{"runId":1,' || substr(body, 2)`, true, true],
    ] as const) {
      p = tempProject();
      const project = new Project({ root: p.root, env: p.env, actor: 'test' });
      try {
        const q = project.tasks();
        // t2 is last in claim order (low priority): the summary reaches it only through the counts.
        q.add(
          [
            { title: 'one', priority: 'critical' },
            { title: 'two', priority: 'low' },
          ],
          'r-x',
          { phase: 'DEVELOPMENT', source: { kind: 'agent', section: null } },
        );
        project.openStore().db.run(`UPDATE tasks SET body = ${damage} WHERE id = 't2'`);
        const run = { runId: 'r-x', tier: 'simple', phase: 'DEVELOPMENT' } as unknown as RunState;
        const named = /task "t2" in \.loki\/loki\.db does not match its schema .*run loki doctor/;
        expect(() => q.summary(run), damage).toThrow(named);
        if (phaseReads) expect(() => q.openInPhaseIds(run), damage).toThrow(named);
        else expect(q.openInPhaseIds(run), damage).toEqual(['t1', 't2']);
        if (failuresRead) expect(() => q.failures('r-x'), damage).toThrow(named);
      } finally {
        project.close();
        p.cleanup();
        p = undefined;
      }
    }
  });

  it('a task whose status is no state is named as damaged, not counted', () => {
    p = tempProject();
    const project = new Project({ root: p.root, env: p.env, actor: 'test' });
    try {
      project.tasks().add([{ title: 'one' }, { title: 'two' }], 'r-x', {
        phase: 'DEVELOPMENT',
        source: { kind: 'agent', section: null },
      });
      project.openStore().db.run(`UPDATE tasks SET body = json_set(body, '$.status', 'gone') WHERE id = 't2'`);
      expect(() => project.tasks().summary(undefined)).toThrow(
        /task "t2" in \.loki\/loki\.db does not match its schema \(status: .*run loki doctor/,
      );
    } finally {
      project.close();
    }
  });
});

describe('loki tasks (CLI)', () => {
  const CLI = path.join(DIST, 'loki.js');
  const loki = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p!.root, env: p!.env, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('lists, filters, shows and retries from dead-letter', async () => {
    await begin({ LOKI_MAX_RETRIES: '1' });
    await c!.call('loki_task_add', { tasks: [{ id: 'd', title: 'doomed', priority: 'critical' }] });
    const h = await claim();
    await c!.call('loki_task_fail', { id: 'd', token: h.token, error: 'cannot reach the database' });
    const list = loki(['tasks']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/t1\s+pending\s+high\s+DEVELOPMENT\s+List products with prices/);
    expect(list.out).toMatch(/d\s+dead-letter\s+critical/);
    const dead = JSON.parse(loki(['tasks', '--status', 'dead-letter', '--json']).out) as {
      total: number;
      tasks: Row[];
    };
    expect(dead.total).toBe(1);
    expect(dead.tasks[0]!.id).toBe('d');
    expect(loki(['tasks', 'show', 'd']).out).toMatch(
      /#1 s-\w+ .* failed: cannot reach the database[\s\S]*loki tasks retry d/,
    );
    expect(loki(['tasks', '--status', 'done']).code).toBe(2);
    expect(loki(['tasks', 'show', 'zzz']).code).toBe(1);
    const retried = loki(['tasks', 'retry', 'd']);
    expect(retried.code).toBe(0);
    expect(retried.out).toMatch(/d is pending again/);
    expect(loki(['tasks', 'retry', 'd'])).toMatchObject({
      code: 1,
      err: expect.stringMatching(/only dead-lettered tasks are retried/),
    });
    // The server sees the CLI's change through the change feed.
    expect((await claim()).task?.id).toBe('d');
    expect(auditLines(p!.root).some((e) => e.action === 'task.retry' && String(e.actor).startsWith('cli:'))).toBe(true);
  });
});
