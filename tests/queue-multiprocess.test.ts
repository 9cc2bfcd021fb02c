/**
 * The queue across real processes: each child runs its own server and SDK client on the same project (the way
 * several agents or subagent servers share one `.loki/`). Exactly-once claiming, order under contention, a
 * claimer killed while holding a task, and dead-letter after the retry limit.
 */
import { describe, expect, it } from 'vitest';
import { queueKit } from './fixtures/queue-kit.js';
import { auditLines, structured } from './helpers.js';

const q = queueKit();
const taskOnDisk = (id: string) => q.taskOnDisk(id);

const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;

interface Drained {
  agent: string;
  claimed: string[];
  latencies: number[];
}

async function drainWith(n: number, env: Record<string, string> = {}): Promise<Drained[]> {
  const kids = Array.from({ length: n }, (_, i) => q.claimer(`agent-${i}`, 'drain', env, true));
  await Promise.all(kids.map((k) => k.line(/^ready$/)));
  for (const k of kids) k.proc.stdin!.write('go\n');
  const exits = await Promise.all(kids.map((k) => k.exited));
  exits.forEach((e, i) => expect(e.code, kids[i]!.stderr()).toBe(0));
  return kids.map((k) => JSON.parse(k.stdout().trim().split('\n').pop()!) as Drained);
}

describe('queue across processes', () => {
  it('8 claimers drain 2,000 tasks: every task claimed and completed exactly once', { timeout: 180_000 }, async () => {
    const tasks = Array.from({ length: 2000 }, (_, i) => ({
      id: `q${i}`,
      title: `task ${i}`,
      phase: 'BOOTSTRAP',
      priority: PRIORITIES[i % 4],
    }));
    await q.setup(tasks);
    // Meanwhile this process keeps listing tasks: its reads (WAL snapshots) race the claimers' commits and must
    // always see whole tasks.
    let draining = true;
    let lists = 0;
    const reader = (async () => {
      while (draining) {
        const r = await q.c.call('loki_task_list', { limit: 5 });
        expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
        lists++;
        // The in-memory transport resolves without I/O: let the children's output be read between calls.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const results = await drainWith(8).finally(() => (draining = false));
    await reader;
    expect(lists).toBeGreaterThan(0);
    const claimed = results.flatMap((r) => r.claimed);
    expect(claimed).toHaveLength(2000);
    expect(new Set(claimed).size).toBe(2000);
    expect(results.filter((r) => r.claimed.length > 0).length).toBeGreaterThan(1);
    for (const id of ['q0', 'q777', 'q1999']) {
      const t = taskOnDisk(id) as { status: string; attempts: unknown[]; lease: unknown };
      expect(t).toMatchObject({ status: 'completed', lease: null });
      expect(t.attempts).toHaveLength(1);
    }
    const status = structured<{ queue: { counts: Record<string, number> } }>(
      await q.c.call('loki_status', { peek: true }),
    );
    // The spec's own task was set aside (blocked) by the kit; the 2,000 tasks are all done.
    expect(status.queue.counts).toMatchObject({
      completed: 2000,
      pending: 0,
      blocked: 1,
      'in-progress': 0,
      failed: 0,
    });
    const claims = auditLines(q.p.root).filter((e) => e.action === 'task.claim');
    expect(claims).toHaveLength(2000);
    // Each claim is audited under the claiming process's name.
    const byActor = new Map(results.map((r) => [`test:${r.agent}`, r.claimed.length]));
    for (const [actor, n] of byActor)
      expect(
        claims.filter((e) => e.actor === actor),
        actor,
      ).toHaveLength(n);
  });

  it('keeps priority and dependency order while 4 processes compete', { timeout: 120_000 }, async () => {
    // 400 tasks in shuffled priorities; every fifth depends on an earlier one.
    const tasks = Array.from({ length: 400 }, (_, i) => ({
      id: `o${i}`,
      title: `ordered ${i}`,
      phase: 'BOOTSTRAP',
      priority: PRIORITIES[(i * 7) % 4]!,
      ...(i % 5 === 4 ? { dependencies: [`o${(i * 13) % i}`] } : {}),
    }));
    await q.setup(tasks);
    await drainWith(4);
    // Claims are serialised by the queue lock and each writes its claim time; replay them in that order.
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const done = tasks.map((t) => {
      const disk = taskOnDisk(t.id) as { attempts: { claimedAt: string; endedAt: string }[] };
      return { id: t.id, claimedAt: disk.attempts[0]!.claimedAt, completedAt: disk.attempts[0]!.endedAt };
    });
    const claimOrder = [...done].sort((a, b) => a.claimedAt.localeCompare(b.claimedAt));
    const completedAt = new Map(done.map((d) => [d.id, d.completedAt]));
    const rank = (id: string) => PRIORITIES.indexOf(byId.get(id)!.priority);
    const claimedAt = new Map(done.map((d) => [d.id, d.claimedAt]));
    for (const d of claimOrder) {
      const task = byId.get(d.id)!;
      // Its dependency was completed before it was claimed.
      for (const dep of task.dependencies ?? [])
        expect(completedAt.get(dep)! <= d.claimedAt, `${d.id} claimed before ${dep} completed`).toBe(true);
      // No task of a strictly higher priority was surely ready then: claimed strictly later, dependencies
      // completed strictly earlier (times have millisecond resolution).
      const better = tasks.find(
        (t) =>
          rank(t.id) < rank(d.id) &&
          claimedAt.get(t.id)! > d.claimedAt &&
          (t.dependencies ?? []).every((dep) => completedAt.get(dep)! < d.claimedAt),
      );
      expect(
        better?.id,
        `${d.id} (${task.priority}) was claimed while ${better?.id} (${better && byId.get(better.id)!.priority}) was ready`,
      ).toBeUndefined();
    }
    expect(claimOrder).toHaveLength(400);
  });

  it(
    'a claimer killed while holding a task: the task is claimable again once the lease runs out',
    { timeout: 60_000 },
    async () => {
      const env = { LOKI_LEASE_MINUTES: '0.05' }; // 3 s
      await q.setup([{ id: 'solo', title: 'the only task', phase: 'BOOTSTRAP' }], env);
      // The other two agents are started first and wait at a barrier, so a slow process start-up on a loaded machine
      // cannot blur which side of the lease expiry their claims fall on.
      const early = q.claimer('early', 'once', env, true);
      const rescuer = q.claimer('rescuer', 'once', env, true);
      await Promise.all([early.line(/^ready$/), rescuer.line(/^ready$/)]);
      const holder = q.claimer('doomed', 'hold', env);
      expect(await holder.line(/^held /)).toBe('held solo');
      const expiresAt = Date.parse((taskOnDisk('solo') as { lease: { expiresAt: string } }).lease.expiresAt);
      holder.proc.kill('SIGKILL');
      await holder.exited;
      // While the lease holds, another agent finds nothing ready.
      early.proc.stdin!.write('go\n');
      expect(await early.line(/^claimed /)).toBe('claimed none 0');
      expect(Date.now(), 'the early claim was answered only after the lease expired').toBeLessThan(expiresAt);
      // The first claim after it expires wins the task back: no sweeper or grace period stands in between.
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 5)));
      rescuer.proc.stdin!.write('go\n');
      expect(await rescuer.line(/^claimed /)).toBe('claimed solo 2');
      expect((await rescuer.exited).code, rescuer.stderr()).toBe(0);
      const t = taskOnDisk('solo') as {
        status: string;
        attempts: { agent: string; outcome: string; error: string | null }[];
      };
      expect(t.status).toBe('completed');
      expect(t.attempts.map((a) => [a.agent, a.outcome])).toEqual([
        ['doomed', 'expired'],
        ['rescuer', 'completed'],
      ]);
      expect(t.attempts[0]!.error).toMatch(/lease expired: doomed claimed it/);
    },
  );

  it(
    'a task failing past the retry limit lands in dead-letter with every attempt and its error',
    { timeout: 60_000 },
    async () => {
      const env = { LOKI_MAX_RETRIES: '3' };
      await q.setup(
        [
          { id: 'flaky', title: 'always fails', phase: 'BOOTSTRAP' },
          { id: 'after', title: 'needs flaky', phase: 'BOOTSTRAP', dependencies: ['flaky'] },
        ],
        env,
      );
      for (const agent of ['f1', 'f2', 'f3']) {
        const k = q.claimer(agent, 'fail', env);
        await k.exited;
        expect(JSON.parse(k.stdout().trim()).failed, k.stderr()).toEqual(['flaky']);
      }
      const t = taskOnDisk('flaky') as {
        status: string;
        failures: number;
        attempts: { agent: string; outcome: string; error: string }[];
      };
      expect(t.status).toBe('dead-letter');
      expect(t.failures).toBe(3);
      expect(t.attempts.map((a) => `${a.agent}:${a.outcome}:${a.error}`)).toEqual([
        'f1:failed:boom from f1 on attempt 1',
        'f2:failed:boom from f2 on attempt 2',
        'f3:failed:boom from f3 on attempt 3',
      ]);
      // The agent moves on: nothing else is claimable, and the briefing says why.
      const nothing = structured<{ task: null; reason: string }>(await q.c.call('loki_task_claim'));
      expect(nothing.task).toBeNull();
      expect(nothing.reason).toMatch(/after depend on dead-lettered tasks/);
      const status = structured<{ problems: string[] }>(await q.c.call('loki_status', { peek: true }));
      expect(status.problems.join('\n')).toMatch(/1 task\(s\) in dead-letter/);
      expect(auditLines(q.p.root).filter((e) => e.action === 'task.dead-letter')).toHaveLength(1);
    },
  );
});
