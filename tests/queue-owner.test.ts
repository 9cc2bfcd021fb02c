/**
 * The queue owner across real processes (queue/owner.ts, client.ts, router.ts): the owner SIGKILLed in the
 * middle of an 8-process drain, a claim whose answer was lost when the owner died (retried with its request id),
 * and the CLI changing the queue while an owner serves its clients.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Project } from '../mcp-server/src/project.js';
import { QueueClient } from '../mcp-server/src/queue/client.js';
import { QueueOwner } from '../mcp-server/src/queue/owner.js';
import { newClaimToken, ownerAddress } from '../mcp-server/src/queue/protocol.js';
import { queueKit } from './fixtures/queue-kit.js';
import { DIST, auditLines, connect, structured, tempProject } from './helpers.js';

const q = queueKit('# Owner test\n');
const taskOnDisk = (id: string) => q.taskOnDisk<TaskOnDisk>(id);

const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;

interface TaskOnDisk {
  status: string;
  lease: { agent: string } | null;
  attempts: { agent: string; outcome: string | null }[];
}

/** The pid of the process that owns this project's queue, asked over its socket (with the project's key). */
async function ownerPid(key = fs.readFileSync(path.join(q.p.root, '.loki/locks/queue-owner.key'), 'utf8')): Promise<number> {
  const client = await QueueClient.connect(ownerAddress(fs.realpathSync(path.join(q.p.root, '.loki')), process.platform, os.tmpdir()), key);
  try {
    return (await client.hello()).pid;
  } finally {
    client.close();
  }
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], { cwd: q.p.root, env: q.p.env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('claim tokens', () => {
  it('are 24 hex characters and never repeat, across refills of the random pool', () => {
    const tokens = Array.from({ length: 5000 }, () => newClaimToken());
    for (const t of tokens) expect(t).toMatch(/^[0-9a-f]{24}$/);
    expect(new Set(tokens).size).toBe(tokens.length);
  });
});

describe('queue owner', () => {
  it('the owner SIGKILLed in the middle of an 8-process drain: every task completed once, nothing acknowledged lost', { timeout: 180_000 }, async () => {
    const N = 800;
    // A short lease, so the task the dead owner's own agent held comes back to the others.
    const env = { LOKI_LEASE_MINUTES: '0.2' };
    await q.setup(Array.from({ length: N }, (_, i) => ({ id: `k${i}`, title: `task ${i}`, phase: 'BOOTSTRAP', priority: PRIORITIES[i % 4] })), env);
    const kids = Array.from({ length: 8 }, (_, i) => q.claimer(`agent-${i}`, 'drain', env, true));
    await Promise.all(kids.map((k) => k.line(/^ready$/)));
    // Once about a fifth of the tasks are done (each adds two lines to the change feed: claimed, completed),
    // kill whichever child owns the queue.
    const feed = path.join(q.p.root, '.loki/queue/changes.log');
    const lines = () => fs.readFileSync(feed, 'utf8').split('\n').length;
    const before = lines();
    for (const k of kids) k.proc.stdin!.write('go\n');
    const deadline = Date.now() + 60_000;
    while (lines() < before + (2 * N) / 5) {
      expect(Date.now(), 'the drain did not get going').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 20));
    }
    const pid = await ownerPid();
    const victim = kids.find((k) => k.proc.pid === pid);
    expect(victim, `the owner (pid ${pid}) is one of the claimers`).toBeDefined();
    victim!.proc.kill('SIGKILL');
    const exits = await Promise.all(kids.map((k) => k.exited));
    const survivors = kids.filter((k) => k !== victim);
    exits.forEach((e, i) => {
      if (kids[i] === victim) expect(e.signal).toBe('SIGKILL');
      else expect(e.code, kids[i]!.stderr()).toBe(0);
    });
    const results = survivors.map((k) => JSON.parse(k.stdout().trim().split('\n').pop()!) as { agent: string; claimed: string[] });
    // The survivors stop when only the dead agent's task is left (the fixture's drain ends on "later phases").
    // Once its lease runs out, one more claimer finishes the queue.
    const leftover = Array.from({ length: N }, (_, i) => `k${i}`).filter((id) => taskOnDisk(id).status !== 'completed');
    expect(leftover.length, leftover.join(', ')).toBeLessThanOrEqual(2);
    for (const id of leftover) expect(taskOnDisk(id).lease?.agent).toBe(`agent-${kids.indexOf(victim!)}`);
    if (leftover.length > 0) {
      const expiry = Math.max(...leftover.map((id) => Date.parse((taskOnDisk(id) as unknown as { lease: { expiresAt: string } }).lease.expiresAt)));
      await new Promise((r) => setTimeout(r, Math.max(0, expiry - Date.now() + 50)));
      const rescuer = q.claimer('rescuer', 'drain', env);
      expect((await rescuer.exited).code, rescuer.stderr()).toBe(0);
      const rescued = JSON.parse(rescuer.stdout().trim().split('\n').pop()!) as { agent: string; claimed: string[] };
      expect([...rescued.claimed].sort()).toEqual([...leftover].sort());
      results.push(rescued);
    }
    const claimed = results.flatMap((r) => r.claimed);
    // No task was handed to two survivors.
    expect(new Set(claimed).size).toBe(claimed.length);
    // Every acknowledged completion is on disk, by the agent it was acknowledged to.
    for (const r of results) {
      for (const id of r.claimed) {
        const t = taskOnDisk(id);
        expect(t.status, id).toBe('completed');
        expect(t.attempts.filter((a) => a.outcome === 'completed').map((a) => a.agent)).toEqual([r.agent]);
      }
    }
    // Nothing lost: every task completed exactly once; any other attempt is the dead agent's, expired.
    const victimAgent = `agent-${kids.indexOf(victim!)}`;
    for (let i = 0; i < N; i++) {
      const t = taskOnDisk(`k${i}`);
      expect(t.status, `k${i}`).toBe('completed');
      expect(t.attempts.filter((a) => a.outcome === 'completed')).toHaveLength(1);
      for (const a of t.attempts.filter((x) => x.outcome !== 'completed')) expect([a.agent, a.outcome]).toEqual([victimAgent, 'expired']);
    }
    const verify = cli(['audit', 'verify']);
    expect(verify.code, verify.out + verify.err).toBe(0);
  });

  it('a claim whose answer was lost when the owner died is retried with its request id and returns the same task', { timeout: 60_000 }, async () => {
    await q.setup([
      { id: 'a', title: 'first', phase: 'BOOTSTRAP', priority: 'critical' },
      { id: 'b', title: 'second', phase: 'BOOTSTRAP', priority: 'high' },
      { id: 'c', title: 'third', phase: 'BOOTSTRAP', priority: 'medium' },
    ]);
    // The owner applies its own claim (batch 1), then the client's claim (batch 2), durably, and dies before
    // answering it.
    const owner = q.claimer('owner', 'hold', { LOKI_FAULT: 'owner-before-reply@2' });
    expect(await owner.line(/^held /)).toBe('held a');
    expect(await ownerPid()).toBe(owner.proc.pid);
    const client = q.claimer('client', 'once');
    expect((await owner.exited).signal).toBe('SIGKILL');
    expect(await client.line(/^claimed /)).toBe('claimed b 1');
    expect((await client.exited).code, client.stderr()).toBe(0);
    expect(taskOnDisk('b').attempts.map((x) => [x.agent, x.outcome])).toEqual([['client', 'completed']]);
    expect(taskOnDisk('c')).toMatchObject({ status: 'pending', attempts: [] });
    expect(taskOnDisk('a')).toMatchObject({ status: 'in-progress', lease: { agent: 'owner' } });
    // The claim was audited once, naming the client's process, though the owner wrote it.
    const claims = auditLines(q.p.root).filter((e) => e.action === 'task.claim' && e.target === 'b');
    expect(claims.map((e) => e.actor)).toEqual(['test:client']);
  });

  it('loki_status reaches or becomes the queue owner before the first claim; without a queue it elects nothing', { timeout: 30_000 }, async () => {
    const bare = tempProject();
    const c = await connect(bare);
    try {
      expect(structured(await c.call('loki_status', { peek: true }))).toBeTruthy();
      expect(fs.existsSync(path.join(bare.root, '.loki'))).toBe(false);
    } finally {
      await c.close();
      bare.cleanup();
    }
    await q.setup([{ id: 's0', title: 'status first', phase: 'BOOTSTRAP' }]);
    const keyFile = path.join(q.p.root, '.loki/locks/queue-owner.key');
    expect(fs.existsSync(keyFile), 'no claim yet, no owner yet').toBe(false);
    await q.c.call('loki_status', { peek: true });
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(keyFile)) {
      expect(Date.now(), 'loki_status did not prepare the queue owner').toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 10));
    }
    let pid: number | undefined;
    while (pid === undefined) {
      pid = await ownerPid().catch(() => undefined);
      if (pid === undefined) await new Promise((r) => setTimeout(r, 10));
      expect(Date.now(), 'the owner did not answer').toBeLessThan(deadline);
    }
    expect(pid).toBe(process.pid);
    // A claimer started now is served by this process from its first claim.
    const k = q.claimer('after-status', 'once');
    expect(await k.line(/^claimed /)).toBe('claimed s0 1');
    expect((await k.exited).code, k.stderr()).toBe(0);
    expect(await ownerPid()).toBe(process.pid);
  });

  it('an owner that exits between batches lets go of the queue lock: the next one neither takes it over nor reloads', { timeout: 60_000 }, async () => {
    await q.setup(Array.from({ length: 6 }, (_, i) => ({ id: `e${i}`, title: `exit ${i}`, phase: 'BOOTSTRAP' })));
    const lockFile = path.join(q.p.root, '.loki/locks/queue.lock');
    const feed = path.join(q.p.root, '.loki/queue/changes.log');
    const feedInode = fs.statSync(feed).ino;
    for (let i = 0; i < 5; i++) {
      // Each claims and completes one task as the only process (so the owner), then exits at once.
      const k = q.claimer(`quick-${i}`, 'once');
      expect(await k.line(/^claimed /)).toBe(`claimed e${i} 1`);
      expect((await k.exited).code, k.stderr()).toBe(0);
      expect(fs.existsSync(lockFile), `after claimer ${i}`).toBe(false);
      expect(k.stderr()).not.toMatch(/LOKI_STALE_LOCK/);
    }
    // A lock taken over from a dead holder would have started the change feed afresh.
    expect(fs.statSync(feed).ino).toBe(feedInode);
    expect(Array.from({ length: 5 }, (_, i) => taskOnDisk(`e${i}`).status)).toEqual(Array(5).fill('completed'));
  });

  it('the CLI changes the queue while an owner serves its clients', { timeout: 60_000 }, async () => {
    const env = { LOKI_MAX_RETRIES: '1' };
    await q.setup(
      [
        { id: 'h', title: 'held by the owner', phase: 'BOOTSTRAP', priority: 'critical' },
        { id: 'f', title: 'fails', phase: 'BOOTSTRAP', priority: 'high' },
      ],
      env,
    );
    const owner = q.claimer('owner', 'hold', env);
    expect(await owner.line(/^held /)).toBe('held h');
    const failer = q.claimer('failer', 'fail', env);
    await failer.exited;
    expect(JSON.parse(failer.stdout().trim()).failed, failer.stderr()).toEqual(['f']);
    expect(taskOnDisk('f').status).toBe('dead-letter');
    // A second client stays connected to the owner while the CLI works.
    const idle = q.claimer('idle', 'hold', env);
    expect(await idle.line(/^held /)).toBe('held none');
    const retried = cli(['tasks', 'retry', 'f']);
    expect(retried.code, retried.err).toBe(0);
    expect(retried.out).toMatch(/f is pending again/);
    const again = q.claimer('again', 'once', env);
    expect(await again.line(/^claimed /)).toBe('claimed f 2');
    expect((await again.exited).code, again.stderr()).toBe(0);
    expect(taskOnDisk('f').status).toBe('completed');
    // The owner was the same process all along.
    expect(await ownerPid()).toBe(owner.proc.pid);
    // Someone who cannot read .loki/ (so has not got the key) gets nothing out of the owner's socket.
    expect(fs.statSync(path.join(q.p.root, '.loki/locks/queue-owner.key')).mode & 0o077).toBe(0);
    await expect(ownerPid('0'.repeat(64))).rejects.toThrow(/queue owner key/);
    const status = structured<{ queue: { counts: Record<string, number> } }>(await q.c.call('loki_status', { peek: true }));
    expect(status.queue.counts).toMatchObject({ completed: 1, 'in-progress': 1 });
  });
});

describe('queue owner shutdown', () => {
  it('requests still waiting when the owner closes are refused, not applied after the locks are let go', async () => {
    const p = tempProject();
    const sockets = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-owner-close-'));
    try {
      const c = await connect(p);
      await c.call('loki_start', { specText: '# Close\n' });
      await c.call('loki_task_add', { tasks: [{ id: 'x1', title: 'one', phase: 'BOOTSTRAP' }] });
      await c.close();
      const project = new Project({ root: p.root, env: p.env, actor: 'closer' });
      const owner = await QueueOwner.listen(path.join(sockets, 'owner.sock'), project.tasks(), 'key');
      // Submitted, then the owner closes before its next batch (as Project.close does at shutdown).
      const waiting = owner.submit({ op: 'claim', opts: { agent: 'late' }, run: undefined });
      owner.close();
      const outcome = await waiting;
      expect(outcome.ok).toBe(false);
      expect(outcome.ok ? '' : outcome.error.message).toMatch(/shutting down.*nothing was changed/);
      expect((await owner.submit({ op: 'claim', opts: { agent: 'later' }, run: undefined })).ok).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const task = JSON.parse(fs.readFileSync(path.join(p.root, '.loki/queue/tasks/x1.json'), 'utf8')) as TaskOnDisk;
      expect(task.status).toBe('pending');
      expect(task.attempts).toEqual([]);
      project.close();
    } finally {
      fs.rmSync(sockets, { recursive: true, force: true });
      p.cleanup();
    }
  });
});
