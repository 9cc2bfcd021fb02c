/**
 * How checkpoints are stored and taken while agents keep working: the state snapshot (a private copy of the
 * database whose rows its record describes), one committed moment while agent processes drain the queue and take
 * their own completed-task checkpoints, every table of the schema either restored or kept by a rollback,
 * generated columns recomputed by a restore, a snapshot of another schema refused, and completed-task
 * checkpoints spaced in time across processes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { autoCheckpoint, createCheckpoint } from '../mcp-server/src/checkpoints/create.js';
import { GATE_RECORD, JOURNAL_RECORD } from '../mcp-server/src/checkpoints/records.js';
import { rollback } from '../mcp-server/src/checkpoints/rollback.js';
import { KEPT_DOC_KINDS, tableRole } from '../mcp-server/src/domain/checkpoints.js';
import { Project } from '../mcp-server/src/project.js';
import { claimTask, completeTask } from '../mcp-server/src/queue/operations.js';
import { SESSION_RECORD } from '../mcp-server/src/run/records.js';
import { Db } from '../mcp-server/src/store/db.js';
import { queueKit } from './fixtures/queue-kit.js';
import { dbRows, openDb, structured } from './helpers.js';

const q = queueKit('# Capture\n');

const manual = { kind: 'manual', trigger: 'manual', label: 'test', reason: null } as const;
const tasks = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `c${i}`, title: `task ${i}`, phase: 'BOOTSTRAP' }));

/** Run `fn` with a Project on the test's project (its own database connection, as another process has). */
async function withProject<T>(env: NodeJS.ProcessEnv, fn: (project: Project) => T | Promise<T>): Promise<T> {
  const project = new Project({ root: q.p.root, env: { ...q.p.env, ...env }, actor: 'test' });
  try {
    return await fn(project);
  } finally {
    project.close();
  }
}

/** Rows of a query on a checkpoint's snapshot file. */
function snapshotRows<T = Record<string, unknown>>(id: string, sql: string): T[] {
  const db = new DatabaseSync(path.join(q.p.root, '.loki/checkpoints', id, 'loki.db'), { readOnly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

interface Body {
  type: string;
  trigger: string;
  createdAt: string;
  costMs: number;
  state: { digest: string; rows: number; bytes: number };
}
const bodyOf = (id: string): Body =>
  JSON.parse(
    dbRows<{ body: string }>(q.p.root, 'SELECT body FROM checkpoints WHERE seq = ?', Number(id.slice(3)))[0]!.body,
  ) as Body;

describe('what a rollback restores and keeps', () => {
  it('every table of the database is either restored or kept, and the documents kept are the live and bookkeeping ones', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-schema-'));
    const db = Db.open(dir);
    try {
      const tables = db
        .all<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['docs', 'tasks', 'task_archive', 'audit', 'checkpoints']));
      // A new table has to be given a role here (domain/checkpoints.ts) before it ships.
      expect(tables.filter((t) => tableRole(t) === undefined)).toEqual([]);
      expect(['audit', 'checkpoints'].map(tableRole)).toEqual(['kept', 'kept']);
      expect(['docs', 'tasks', 'task_archive'].map(tableRole)).toEqual(['restored', 'restored', 'restored']);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(KEPT_DOC_KINDS).toEqual(
      expect.arrayContaining([SESSION_RECORD.kind, JOURNAL_RECORD.kind, GATE_RECORD.kind]),
    );
  });
});

describe('a checkpoint as stored', () => {
  it('is a private copy of the database, of this schema, whose restored rows its record counts; another schema is refused', async () => {
    await q.setup(tasks(20));
    const { created } = await withProject({}, (project) => {
      const out = createCheckpoint(project, manual);
      if (!('created' in out)) throw new Error('expected a checkpoint');
      return out;
    });
    const dir = path.join(q.p.root, '.loki/checkpoints', created.id);
    const file = path.join(dir, 'loki.db');
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(snapshotRows(created.id, 'PRAGMA user_version')).toEqual(dbRows(q.p.root, 'PRAGMA user_version'));
    // The tasks as they were, and every table copied (the audit log too, as history to read, never restored).
    const taskRows = 'SELECT id, body FROM tasks ORDER BY id';
    expect(snapshotRows(created.id, taskRows)).toEqual(dbRows(q.p.root, taskRows));
    expect(snapshotRows(created.id, 'SELECT count(*) AS n FROM audit')[0]).toEqual({ n: expect.any(Number) });
    const kept = "('session', 'memory', 'rollback-journal', 'checkpoint-gate')";
    const counted = snapshotRows<{ n: number }>(
      created.id,
      `SELECT (SELECT count(*) FROM docs WHERE kind NOT IN ${kept}) + (SELECT count(*) FROM tasks) + (SELECT count(*) FROM task_archive) AS n`,
    )[0]!.n;
    const body = bodyOf(created.id);
    expect(body).toMatchObject({
      type: 'manual',
      trigger: 'manual',
      state: { rows: counted, bytes: fs.statSync(file).size },
    });
    expect(body.state.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(dbRows(q.p.root, "SELECT target FROM audit WHERE action = 'checkpoint.create'")).toContainEqual({
      target: created.id,
    });
    // No staged copy is left behind.
    expect(fs.readdirSync(path.join(q.p.root, '.loki/checkpoints')).filter((n) => n.startsWith('.'))).toEqual([]);

    // A snapshot from a newer loki-mode is refused, nothing changed.
    const snap = new DatabaseSync(file);
    snap.exec('PRAGMA user_version = 99');
    snap.close();
    const before = dbRows(q.p.root, 'SELECT id, body FROM tasks ORDER BY id');
    await withProject({}, (project) => {
      expect(() => rollback(project, created.id, false)).toThrow(
        /taken by a newer loki-mode \(database schema 99; this one knows up to \d+\): upgrade loki-mode.*nothing was changed/,
      );
    });
    expect(dbRows(q.p.root, 'SELECT id, body FROM tasks ORDER BY id')).toEqual(before);
    expect(dbRows(q.p.root, "SELECT seq FROM checkpoints WHERE type = 'pre-rollback'")).toEqual([]);

    // One taken at schema 1 (before the meta table) is restored from a migrated copy; its own file is left as it was.
    const old = new DatabaseSync(file);
    old.exec('DROP TABLE meta; PRAGMA user_version = 1');
    old.close();
    const oldBytes = fs.readFileSync(file);
    structured(await q.c.call('loki_task_claim', { agent: 'after-the-checkpoint' }));
    expect(dbRows(q.p.root, 'SELECT id, body FROM tasks ORDER BY id')).not.toEqual(before);
    await withProject({}, (project) => rollback(project, created.id, false));
    expect(dbRows(q.p.root, 'SELECT id, body FROM tasks ORDER BY id')).toEqual(before);
    expect(fs.readFileSync(file).equals(oldBytes)).toBe(true);
    expect(fs.readdirSync(path.join(q.p.root, '.loki/checkpoints')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it(
    'is one committed moment while three agent processes drain the queue and take their own checkpoints; a restore recomputes generated columns',
    { timeout: 120_000 },
    async () => {
      const spacing = { LOKI_CHECKPOINT_TASK_SPACING: '0.05' };
      await q.setup(tasks(150), spacing);
      const kids = ['a', 'b', 'c'].map((agent) => q.claimer(agent, 'drain', spacing, true));
      await Promise.all(kids.map((k) => k.line(/^ready$/)));
      for (const k of kids) k.proc.stdin!.write('go\n');
      let running = true;
      const exits = Promise.all(kids.map((k) => k.exited)).finally(() => (running = false));
      const mine: string[] = [];
      await withProject({}, async (project) => {
        while (running) {
          const out = createCheckpoint(project, { ...manual, label: `during the drain ${mine.length}` });
          if ('created' in out) mine.push(out.created.id);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      });
      (await exits).forEach((e, i) => expect(e.code, kids[i]!.stderr()).toBe(0));
      // None of the agents' automatic checkpoints failed (they would say so on stderr, not fail the completion).
      for (const k of kids) expect(k.stderr()).not.toMatch(/not taken/);
      expect(mine.length).toBeGreaterThan(1);
      const all = dbRows<{ seq: number; type: string; trigger: string }>(
        q.p.root,
        "SELECT seq, type, body ->> '$.trigger' AS trigger FROM checkpoints ORDER BY seq",
      );
      // The agents' completed-task checkpoints were coalesced: a few, not one per task.
      const taskAutos = all.filter((r) => r.trigger === 'task-complete').length;
      expect(taskAutos).toBeGreaterThan(0);
      expect(taskAutos).toBeLessThan(150);
      // In every snapshot, each completed task has its audit entry and no entry lacks its task: each completion
      // and its entry were one transaction, and a snapshot is one committed moment.
      for (const { seq } of all) {
        const [done, entries] = [
          snapshotRows<{ n: number }>(`cp-${seq}`, "SELECT count(*) AS n FROM tasks WHERE status = 'completed'")[0]!.n,
          snapshotRows<{ n: number }>(`cp-${seq}`, "SELECT count(*) AS n FROM audit WHERE action = 'task.complete'")[0]!
            .n,
        ];
        expect(done, `cp-${seq}`).toBe(entries);
      }

      // Back to a moment in the middle of the drain: its queue exactly, generated columns included, and claimable.
      const middle = mine.find(
        (id) => snapshotRows<{ n: number }>(id, "SELECT count(*) AS n FROM tasks WHERE status = 'pending'")[0]!.n > 0,
      )!;
      expect(middle).toBeDefined();
      const r = await withProject({}, (project) => rollback(project, middle, false));
      expect(r.changes.state.modified).toBeGreaterThan(0);
      const everyColumn = 'SELECT * FROM tasks ORDER BY id';
      expect(dbRows(q.p.root, everyColumn)).toEqual(snapshotRows(middle, everyColumn));
      expect(
        dbRows(q.p.root, "SELECT id FROM tasks WHERE status IS NOT body ->> '$.status' OR seq IS NOT body ->> '$.seq'"),
      ).toEqual([]);
      const claimed = structured<{ task: { id: string } | null }>(await q.c.call('loki_task_claim', {}));
      expect(snapshotRows(middle, "SELECT id FROM tasks WHERE status = 'pending'")).toContainEqual({
        id: claimed.task!.id,
      });
    },
  );
});

describe('completed-task checkpoints in time', () => {
  /** Make the newest automatic checkpoint `ageMs` old, having cost `costMs`. */
  const age = (ageMs: number, costMs: number) => {
    const db = openDb(q.p.root, false);
    db.prepare(
      "UPDATE checkpoints SET body = json_set(body, '$.createdAt', ?, '$.costMs', ?) WHERE seq = (SELECT max(seq) FROM checkpoints WHERE type = 'auto')",
    ).run(new Date(Date.now() - ageMs).toISOString(), costMs);
    db.close();
  };
  /** Record that a process started a completed-task checkpoint `ageMs` ago. */
  const started = (ageMs: number) => {
    const db = openDb(q.p.root, false);
    db.prepare(
      "INSERT INTO docs (key, kind, body) VALUES ('checkpoint-gate', 'checkpoint-gate', ?) ON CONFLICT (key) DO UPDATE SET body = excluded.body",
    ).run(JSON.stringify({ startedAt: Date.now() - ageMs, actor: 'other' }));
    db.close();
  };
  const completeOne = async (project: Project) => {
    const r = await claimTask(project, { agent: 'a' });
    await completeTask(project, r.task!.id, r.token!, 'done', []);
  };

  it('are spaced by the setting and by ten times what the last one cost, and one started by another process counts', async () => {
    await q.setup(tasks(6));
    await withProject({ LOKI_CHECKPOINT_TASK_SPACING: '1' }, async (project) => {
      // loki_start took one just now: too soon.
      await completeOne(project);
      expect(autoCheckpoint(project, 'task-complete', 'right after the start')).toBeNull();
      // The last one, 5 s ago, cost 1 s: the next is due 10 s after it.
      age(5_000, 1_000);
      expect(autoCheckpoint(project, 'task-complete', 'too soon for its cost')).toBeNull();
      // Cheap: the configured spacing (1 s) has passed, but another process started one 200 ms ago.
      age(5_000, 20);
      started(200);
      expect(autoCheckpoint(project, 'task-complete', 'another one is being taken')).toBeNull();
      started(5_000);
      const taken = autoCheckpoint(project, 'task-complete', 'due');
      expect(taken).toMatch(/^cp-\d+$/);
      // Taking it recorded its start, in the same transaction as the decision.
      expect(
        JSON.parse(dbRows<{ body: string }>(q.p.root, "SELECT body FROM docs WHERE key = 'checkpoint-gate'")[0]!.body),
      ).toMatchObject({ actor: 'test' });
      expect(bodyOf(taken!)).toMatchObject({ type: 'auto', trigger: 'task-complete', costMs: expect.any(Number) });
    });
    // A spacing of 0 takes one after every completed task; switched off, none.
    await withProject({ LOKI_CHECKPOINT_TASK_SPACING: '0' }, async (project) => {
      await completeOne(project);
      const one = autoCheckpoint(project, 'task-complete', 'one');
      await completeOne(project);
      const two = autoCheckpoint(project, 'task-complete', 'two');
      expect([one, two]).toEqual([expect.stringMatching(/^cp-\d+$/), expect.stringMatching(/^cp-\d+$/)]);
      expect(one).not.toBe(two);
    });
    await withProject({ LOKI_CHECKPOINT_TASK_SPACING: '0', LOKI_CHECKPOINT_ON_TASK: 'false' }, async (project) => {
      await completeOne(project);
      expect(autoCheckpoint(project, 'task-complete', 'off')).toBeNull();
    });
  });
});
