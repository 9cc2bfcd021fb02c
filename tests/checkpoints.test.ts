/**
 * Checkpoints and rollback through the real tools on real temporary git repositories: byte-for-byte restores of
 * tracked and untracked files and row-for-row restores of the run state in `.loki/loki.db`, undo, the user's
 * HEAD/branch/index/stash never touched (asked of git itself), what a rollback keeps (audit log, memory,
 * sessions, checkpoints), retention, damaged checkpoints, a rollback waiting for another process's transaction,
 * SIGKILL at every step, and projects outside git.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseSync } from 'node:sqlite';
import {
  DIST,
  auditLines,
  connect,
  dbRows,
  docOnDisk,
  git,
  openDb,
  structured,
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

interface Row {
  id: string;
  kind: string;
  trigger: string;
  label: string;
  scope: string;
}
interface Summary {
  added: number;
  modified: number;
  removed: number;
  paths: string[];
}
interface Rolled {
  target: string;
  preRollback: string;
  scope: string;
  resumed: boolean;
  changes: { code: Summary | null; state: Summary };
  note: string | null;
}

/** Every file of the working tree (not .git, not .loki) with its bytes and mode. */
export function workTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      if (rel === '' && (name === '.git' || name === '.loki')) continue;
      const abs = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) walk(abs, r);
      else if (st.isSymbolicLink()) out[r] = `link:${fs.readlinkSync(abs)}`;
      else
        out[r] =
          `${(st.mode & 0o111) !== 0 ? 'x' : '-'}:${crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`;
    }
  };
  walk(root, '');
  return out;
}

/**
 * Documents a rollback keeps as they are (the rest of the docs table is run state): the live and bookkeeping ones,
 * and history (verifications and the baseline's tests, councils, waivers, and the trust state of the same run;
 * tests/completion-work.test.ts).
 */
const KEPT_KINDS =
  "('session', 'memory', 'rollback-journal', 'checkpoint-gate', 'verification', 'baseline-tests', 'council', 'waiver', 'trust')";

/** The run state a rollback restores, as stored: every row of the docs (less the kept kinds), tasks and task_archive tables. */
function lokiState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of dbRows<{ key: string; kind: string; body: string }>(
    root,
    `SELECT key, kind, body FROM docs WHERE kind NOT IN ${KEPT_KINDS}`,
  ))
    out[`docs/${r.key}`] = `${r.kind} ${r.body}`;
  for (const r of dbRows<Record<string, unknown>>(root, 'SELECT * FROM tasks'))
    out[`tasks/${String(r.id)}`] = JSON.stringify(r);
  for (const r of dbRows<Record<string, unknown>>(root, 'SELECT * FROM task_archive'))
    out[`task_archive/${String(r.run_id)}/${String(r.id)}`] = JSON.stringify(r);
  return out;
}

/** The journal of a rollback whose files are still to be restored, if any. */
const journal = (root: string) => docOnDisk(root, 'rollback');

/** What the user's git sees: HEAD, branch, index bytes, staged diff, stash list, HEAD's reflog. */
function userGit(root: string) {
  return {
    head: git(root, 'rev-parse', 'HEAD'),
    branch: git(root, 'symbolic-ref', 'HEAD'),
    index: crypto
      .createHash('sha256')
      .update(fs.readFileSync(path.join(root, '.git', 'index')))
      .digest('hex'),
    cached: git(root, 'diff', '--cached', '--name-status'),
    stash: git(root, 'stash', 'list'),
    reflog: fs.readFileSync(path.join(root, '.git', 'logs', 'HEAD'), 'utf8'),
  };
}

const write = (root: string, rel: string, data: string) => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), data);
};

/** A git project with tracked, untracked, ignored and executable files, a stash entry and a staged change. */
function gitProject(): TempProject {
  const t = tempProject({
    git: true,
    files: {
      'a.txt': 'alpha\n',
      'dir/b.txt': 'bravo\n',
      'run.sh': '#!/bin/sh\necho hi\n',
      '.gitignore': '*.log\n',
      'keep.txt': 'k\n',
    },
  });
  fs.chmodSync(path.join(t.root, 'run.sh'), 0o755);
  git(t.root, 'add', 'run.sh');
  git(t.root, 'commit', '-q', '-m', 'exec bit');
  write(t.root, 'keep.txt', 'stashed change\n');
  git(t.root, 'stash', 'push', '-q', '-m', 'user stash');
  write(t.root, 'keep.txt', 'staged change\n');
  git(t.root, 'add', 'keep.txt');
  write(t.root, 'untracked.txt', 'untracked v1\n');
  write(t.root, 'ignored.log', 'ignored v1\n');
  return t;
}

async function list(
  kind?: string,
): Promise<{ checkpoints: Row[]; latest: string | null; total: number; damaged: { id: string; problem: string }[] }> {
  return structured(await c!.call('loki_checkpoint_list', kind ? { kind, limit: 100 } : { limit: 100 }));
}

describe('checkpoints and rollback in a git repository', () => {
  it('restores tracked and untracked files byte for byte and the run state row for row, undoes the rollback, and never touches HEAD, branch, index, stash', async () => {
    p = gitProject();
    c = await connect(p);
    const git0 = userGit(p.root);
    const started = structured<{ checkpoint: string | null }>(
      await c.call('loki_start', { specText: '# Shop\n- list products\n- search\n', tier: 'simple' }),
    );
    expect(started.checkpoint).toBe('cp-1');
    const made = structured<{ checkpoint: Row }>(
      await c.call('loki_checkpoint_create', { label: 'base', reason: 'before the risky part' }),
    );
    expect(made.checkpoint).toMatchObject({ id: 'cp-2', kind: 'manual', label: 'base', scope: 'code+state' });
    const treeAtBase = workTree(p.root);
    const stateAtBase = lokiState(p.root);

    // Change everything a run changes: tracked, untracked, deleted, new folders, modes, ignored files, state.
    write(p.root, 'a.txt', 'alpha changed\n');
    fs.rmSync(path.join(p.root, 'dir/b.txt'));
    write(p.root, 'new.txt', 'new file\n');
    write(p.root, 'newdir/deep/c.txt', 'deep\n');
    write(p.root, 'untracked.txt', 'untracked v2\n');
    fs.chmodSync(path.join(p.root, 'run.sh'), 0o644);
    write(p.root, 'ignored.log', 'ignored v2\n');
    expect(
      structured(await c.call('loki_task_add', { tasks: [{ id: 'extra', title: 'added after the checkpoint' }] })),
    ).toBeTruthy();
    const memory = structured<{ id: string }>(
      await c.call('loki_memory_record', {
        layer: 'episode',
        title: 'learned something',
        outcome: 'success',
        lessons: ['keep me'],
      }),
    ).id;
    const auditBefore = auditLines(p.root);
    const sessions = dbRows(p.root, "SELECT key FROM docs WHERE kind = 'session'");
    expect(sessions.length).toBeGreaterThan(0);
    const treeChanged = workTree(p.root);
    const stateChanged = lokiState(p.root);
    expect(treeChanged).not.toEqual(treeAtBase);
    expect(stateChanged).not.toEqual(stateAtBase);

    const r = await c.call('loki_rollback', { target: 'cp-2', code: true });
    const rolled = structured<Rolled>(r);
    expect(rolled).toMatchObject({ target: 'cp-2', scope: 'code+state', resumed: false });
    expect(rolled.changes.code).toMatchObject({ added: 1, modified: 3, removed: 2 });
    expect(rolled.changes.code!.paths).toEqual(
      expect.arrayContaining([
        '+ dir/b.txt',
        '- new.txt',
        '- newdir/deep/c.txt',
        '~ a.txt',
        '~ untracked.txt',
        '~ run.sh',
      ]),
    );
    expect(rolled.changes.state.paths).toContain('- tasks/extra');
    expect(text(r)).toMatch(new RegExp(`Undo: loki_rollback target "${rolled.preRollback}"`));

    // The ignored file keeps its new bytes; everything else is exactly as at the checkpoint.
    expect(workTree(p.root)).toEqual({ ...treeAtBase, 'ignored.log': treeChanged['ignored.log'] });
    expect(fs.existsSync(path.join(p.root, 'newdir'))).toBe(false);
    expect(lokiState(p.root)).toEqual(stateAtBase);
    // Kept: the memory recorded after the checkpoint, the live sessions, and the audit log, which only grew.
    expect(
      structured<{ items: unknown[]; missing: string[] }>(await c.call('loki_memory_get', { ids: [memory] })).missing,
    ).toEqual([]);
    expect(dbRows(p.root, "SELECT key FROM docs WHERE kind = 'session'")).toEqual(sessions);
    expect(auditLines(p.root).slice(0, auditBefore.length)).toEqual(auditBefore);
    expect(userGit(p.root)).toEqual(git0);
    // The queue as this very process sees it is the restored one.
    const rows = structured<{ rows: { id: string }[] }>(await c.call('loki_task_list', {})).rows.map((t) => t.id);
    expect(rows).not.toContain('extra');

    // `latest` never names the pre-rollback checkpoint.
    const after = await list();
    expect(after.checkpoints.find((x) => x.id === rolled.preRollback)).toMatchObject({
      kind: 'pre-rollback',
      label: 'before rollback to cp-2',
    });
    expect(after.latest).toBe('cp-2');

    // Roll back the rollback.
    const undo = structured<Rolled>(await c.call('loki_rollback', { target: rolled.preRollback, code: true }));
    expect(undo.changes.code).toMatchObject({ added: 2, modified: 3, removed: 1 });
    expect(workTree(p.root)).toEqual(treeChanged);
    expect(lokiState(p.root)).toEqual(stateChanged);
    expect(userGit(p.root)).toEqual(git0);
    expect(structured<{ rows: { id: string }[] }>(await c.call('loki_task_list', {})).rows.map((t) => t.id)).toContain(
      'extra',
    );

    const actions = auditLines(p.root).map((e) => `${e.action} ${e.target}`);
    expect(actions).toEqual(
      expect.arrayContaining([
        'checkpoint.create cp-1',
        'checkpoint.create cp-2',
        'checkpoint.rollback cp-2',
        `checkpoint.rollback ${rolled.preRollback}`,
      ]),
    );
    // The refs are ours; the user's refs are the branch and the stash.
    expect(git(p.root, 'for-each-ref', '--format=%(refname)', 'refs/loki/checkpoints')).toContain(
      'refs/loki/checkpoints/cp-2',
    );
  });

  it('rolls back .loki/ state only when code is false, and takes automatic checkpoints at start, per task and before a phase change', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_TASK_SPACING: '0' });
    await c.call('loki_start', { specText: '# App\n\n- build the app\n', tier: 'simple' });
    // BOOTSTRAP had nothing to do: it passed at the start, without a checkpoint of its own (run-start is one).
    const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
    write(p.root, 'a.txt', 'work for the task\n');
    const done = structured<{ checkpoint: string | null }>(
      await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'did it' }),
    );
    expect(done.checkpoint).toBe('cp-2');
    // DEVELOPMENT then passed to QA by itself; an explicit phase change (back, with a reason) takes one first.
    write(p.root, 'a.txt', 'more work before the phase change\n');
    expect(text(await c.call('loki_phase_advance', { to: 'DEVELOPMENT', reason: 'rework' }))).toMatch(
      /QA -> DEVELOPMENT/,
    );
    const autos = (await list('auto')).checkpoints;
    expect(autos.map((x) => x.trigger)).toEqual(['phase-advance', 'task-complete', 'run-start']);

    write(p.root, 'a.txt', 'later edit\n');
    const r = structured<Rolled>(await c.call('loki_rollback', { target: 'cp-1', code: false }));
    expect(r.changes.code).toBeNull();
    expect(r.note).toMatch(/code left as it is/);
    expect(fs.readFileSync(path.join(p.root, 'a.txt'), 'utf8')).toBe('later edit\n');
    expect(text(await c.call('loki_status', { peek: true }))).toMatch(/BOOTSTRAP/);
  });

  it('skips an automatic checkpoint when nothing changed, and can be switched off per task', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_ON_TASK: 'false' });
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', { tasks: [{ title: 'one', phase: 'BOOTSTRAP' }] });
    const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
    const done = structured<{ checkpoint: string | null }>(
      await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'x' }),
    );
    expect(done.checkpoint).toBeNull();
    // Phase advance is refused (open tasks), so no checkpoint either; then an unchanged project coalesces.
    const { createCheckpoint } = await import('../mcp-server/src/checkpoints/create.js');
    const first = await createCheckpoint(
      c.project,
      { kind: 'auto', trigger: 'phase-advance', label: 'x', reason: null },
      true,
    );
    const again = await createCheckpoint(
      c.project,
      { kind: 'auto', trigger: 'phase-advance', label: 'x', reason: null },
      true,
    );
    expect('created' in first).toBe(true);
    expect(again).toEqual({ unchanged: (first as { created: { id: string } }).created.id });
    write(p.root, 'a.txt', 'changed\n');
    expect(
      'created' in
        (await createCheckpoint(c.project, { kind: 'auto', trigger: 'phase-advance', label: 'x', reason: null }, true)),
    ).toBe(true);
  });

  it('coalesces completed-task checkpoints that come closer together than the spacing', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_TASK_SPACING: '30' });
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', {
      tasks: [
        { title: 'one', phase: 'BOOTSTRAP' },
        { title: 'two', phase: 'BOOTSTRAP' },
      ],
    });
    for (let i = 0; i < 2; i++) {
      const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
      write(p.root, `f${i}.txt`, 'x\n');
      expect(
        structured<{ checkpoint: string | null }>(
          await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'x' }),
        ).checkpoint,
      ).toBeNull();
    }
    expect((await list('auto')).checkpoints.map((x) => x.trigger)).toEqual(['run-start']);
  });

  it('keeps exactly the configured number of automatic checkpoints; manual ones survive, with their refs and snapshots', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_RETENTION: '3', LOKI_CHECKPOINT_TASK_SPACING: '0' });
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', {
      tasks: Array.from({ length: 6 }, (_, i) => ({ title: `feature ${i}`, phase: 'BOOTSTRAP' })),
    });
    await c.call('loki_checkpoint_create', { label: 'manual one' });
    // What crashes leave: a copy never published (an hour old), and a folder and a ref whose record is gone.
    const staged = path.join(p.root, '.loki/checkpoints/.snapshot.0123456789ab.tmp');
    fs.writeFileSync(staged, 'left by a crash');
    const anHourAgo = new Date(Date.now() - 61 * 60_000);
    fs.utimesSync(staged, anHourAgo, anHourAgo);
    const fresh = path.join(p.root, '.loki/checkpoints/.snapshot.ba9876543210.tmp');
    fs.writeFileSync(fresh, 'being taken by another process');
    fs.mkdirSync(path.join(p.root, '.loki/checkpoints/cp-1000'));
    fs.writeFileSync(path.join(p.root, '.loki/checkpoints/cp-1000/loki.db'), 'orphan');
    git(p.root, 'update-ref', 'refs/loki/checkpoints/cp-1000', 'HEAD');
    for (let i = 0; i < 6; i++) {
      const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
      write(p.root, `f${i}.txt`, `${i}\n`);
      await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'x' });
      if (i === 2) await c.call('loki_checkpoint_create', { label: 'manual two' });
    }
    const all = await list();
    expect(all.checkpoints.filter((x) => x.kind === 'auto')).toHaveLength(3);
    expect(
      all.checkpoints
        .filter((x) => x.kind === 'manual')
        .map((x) => x.label)
        .sort(),
    ).toEqual(['manual one', 'manual two']);
    const ids = all.checkpoints.map((x) => x.id).sort();
    expect(
      dbRows<{ seq: number }>(p.root, 'SELECT seq FROM checkpoints')
        .map((r) => `cp-${r.seq}`)
        .sort(),
    ).toEqual(ids);
    // Exactly one snapshot folder and one ref per recorded checkpoint; the crash leftovers are gone, the fresh copy stays.
    const refs = git(p.root, 'for-each-ref', '--format=%(refname:short)', 'refs/loki/checkpoints')
      .split('\n')
      .map((x) => x.replace('loki/checkpoints/', ''))
      .sort();
    expect(refs).toEqual(ids);
    const names = fs.readdirSync(path.join(p.root, '.loki/checkpoints'));
    expect(names.filter((n) => n.startsWith('cp-')).sort()).toEqual(ids);
    expect(names.filter((n) => n.startsWith('.'))).toEqual([path.basename(fresh)]);
    for (const id of ids)
      expect(fs.statSync(path.join(p.root, '.loki/checkpoints', id, 'loki.db')).mode & 0o777).toBe(0o600);
    // Every checkpoint left is restorable: roll back to the oldest manual one and back.
    const oldest = all.checkpoints.find((x) => x.label === 'manual one')!;
    const r = structured<Rolled>(await c.call('loki_rollback', { target: oldest.id, code: true }));
    expect(fs.existsSync(path.join(p.root, 'f0.txt'))).toBe(false);
    await c.call('loki_rollback', { target: r.preRollback, code: true });
    expect(fs.readFileSync(path.join(p.root, 'f5.txt'), 'utf8')).toBe('5\n');
    // Ids are never given twice, not even those retention removed.
    const seqs = auditLines(p.root)
      .filter((e) => e.action === 'checkpoint.create')
      .map((e) => e.target);
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('refuses a damaged checkpoint and changes nothing', async () => {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n- one\n', tier: 'simple' });
    await c.call('loki_task_add', { tasks: [{ id: 'marker-task', title: 'a title to find in the snapshot' }] });
    await c.call('loki_checkpoint_create', { label: 'a' });
    await c.call('loki_checkpoint_create', { label: 'b' });
    await c.call('loki_checkpoint_create', { label: 'c' });
    write(p.root, 'a.txt', 'after\n');
    const before = { tree: workTree(p.root), state: lokiState(p.root), git: userGit(p.root), list: await list() };

    const refused = async (id: string, why: RegExp) => {
      const r = await c!.call('loki_rollback', { target: id, code: true });
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(new RegExp(`checkpoint ${id} is damaged`));
      expect(text(r)).toMatch(why);
      expect(text(r)).toMatch(/nothing was changed/);
    };
    // One byte of a task in the snapshot changed (SQLite reads it fine: the digest tells), then put back.
    const snapshot = path.join(p.root, '.loki/checkpoints/cp-2/loki.db');
    const good = fs.readFileSync(snapshot);
    const at = good.indexOf('a title to find');
    expect(at).toBeGreaterThan(0);
    const flipped = Buffer.from(good);
    flipped[at] = 'A'.charCodeAt(0);
    fs.writeFileSync(snapshot, flipped);
    await refused('cp-2', /its state snapshot does not match the digest in its record/);
    fs.writeFileSync(snapshot, good);
    // Not a database at all.
    fs.writeFileSync(path.join(p.root, '.loki/checkpoints/cp-3/loki.db'), 'x'.repeat(4096));
    await refused('cp-3', /its state snapshot cannot be (opened|read)/);
    // cp-2: its snapshot is gone; cp-3: its git ref is gone; cp-4: its record no longer matches its schema.
    fs.rmSync(snapshot);
    git(p.root, 'update-ref', '-d', 'refs/loki/checkpoints/cp-3');
    const db = openDb(p.root, false);
    db.prepare(`UPDATE checkpoints SET body = json_set(body, '$.label', 5) WHERE seq = 4`).run();
    db.close();
    await refused('cp-2', /its state snapshot \.loki\/checkpoints\/cp-2\/loki\.db is missing/);
    await refused('cp-3', /git ref refs\/loki\/checkpoints\/cp-3 is missing/);
    await refused('cp-4', /its record is damaged \(label:/);
    expect((await c.call('loki_rollback', { target: 'cp-99', code: true })).content).toEqual([
      { type: 'text', text: expect.stringMatching(/no checkpoint "cp-99"/) },
    ]);
    expect((await c.call('loki_rollback', { target: '../x', code: true })).isError).toBe(true);
    expect(workTree(p.root)).toEqual(before.tree);
    expect(lokiState(p.root)).toEqual(before.state);
    expect(userGit(p.root)).toEqual(before.git);
    const now = await list();
    expect(now.damaged).toEqual([{ id: 'cp-4', problem: expect.stringMatching(/its record is damaged/) }]);
    expect(now.total).toBe(before.list.total - 1);
    expect(await list('pre-rollback')).toMatchObject({ total: 0 });
  });

  it('waits for a transaction another process holds, then rolls back', async () => {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n- one\n', tier: 'simple' });
    await c.call('loki_checkpoint_create', { label: 'good' });
    const state = lokiState(p.root);
    await c.call('loki_task_add', { tasks: [{ id: 'later', title: 'later' }] });
    // Another process takes the write lock and changes the run in a transaction it commits 1.5 s later.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const { DatabaseSync } = require('node:sqlite');
         const db = new DatabaseSync(process.argv[1]);
         db.exec('BEGIN IMMEDIATE');
         db.prepare("UPDATE docs SET body = json_set(body, '$.iteration', 77) WHERE key = 'run'").run();
         process.stdout.write('held\\n');
         setTimeout(() => { db.exec('COMMIT'); db.close(); }, 1500);`,
        path.join(p.root, '.loki/loki.db'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve()),
    );
    const t0 = Date.now();
    const r = structured<Rolled>(await c.call('loki_rollback', { target: 'latest', code: true }));
    expect(Date.now() - t0).toBeGreaterThan(1000);
    expect(r.target).toBe('cp-2');
    expect(lokiState(p.root)).toEqual(state);
    // The undo holds what the other process committed: the rollback copied the state only once it had the lock.
    const undo = path.join(p.root, '.loki/checkpoints', r.preRollback, 'loki.db');
    const snap = new DatabaseSync(undo, { readOnly: true });
    try {
      expect(
        JSON.parse((snap.prepare("SELECT body FROM docs WHERE key = 'run'").get() as { body: string }).body).iteration,
      ).toBe(77);
      expect(snap.prepare("SELECT id FROM tasks WHERE id = 'later'").get()).toBeDefined();
    } finally {
      snap.close();
    }
  });
});

describe('checkpoints outside a git repository', () => {
  it('cover .loki/ state only, say so, and refuse to restore code', async () => {
    p = tempProject({ files: { 'notes.txt': 'n\n' } });
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n- one\n', tier: 'simple' });
    const made = await c.call('loki_checkpoint_create', { label: 'plain' });
    expect(structured<{ checkpoint: Row }>(made).checkpoint).toMatchObject({
      scope: 'state only',
      note: expect.stringMatching(/not a git repository.*state only/),
    });
    expect(text(made)).toMatch(/state only: not a git repository/);
    const id = structured<{ checkpoint: Row }>(made).checkpoint.id;
    const state = lokiState(p.root);
    await c.call('loki_task_add', { tasks: [{ id: 'later', title: 'later' }] });
    write(p.root, 'notes.txt', 'changed\n');
    const refused = await c.call('loki_rollback', { target: id, code: true });
    expect(text(refused)).toMatch(/has no code snapshot \(not a git repository.*roll back with code: false/);
    const r = structured<Rolled>(await c.call('loki_rollback', { target: id, code: false }));
    expect(r).toMatchObject({
      scope: 'state only',
      changes: { code: null, state: { removed: 1, paths: ['- tasks/later'] } },
    });
    expect(r.note).toMatch(/not a git repository/);
    expect(lokiState(p.root)).toEqual(state);
    expect(fs.readFileSync(path.join(p.root, 'notes.txt'), 'utf8')).toBe('changed\n');
  });
});

describe('a rollback killed with SIGKILL', () => {
  const CLI = path.join(DIST, 'loki.js');
  const loki = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], {
      cwd: p!.root,
      env: { ...p!.env, ...env },
      encoding: 'utf8',
    });
    return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
  };

  /** A project with a good checkpoint (cp-2), then code and state changed after it; its tree and state at both points. */
  async function changedAfterCheckpoint() {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', { tasks: [{ id: 'first', title: 'one', phase: 'BOOTSTRAP' }] });
    await c.call('loki_checkpoint_create', { label: 'good' });
    const tree = workTree(p.root);
    const state = lokiState(p.root);
    const git0 = userGit(p.root);
    write(p.root, 'a.txt', 'broken\n');
    fs.rmSync(path.join(p.root, 'dir/b.txt'));
    write(p.root, 'junk/new.txt', 'junk\n');
    await c.call('loki_task_add', {
      tasks: [
        { id: 'second', title: 'two', phase: 'BOOTSTRAP' },
        { id: 'third', title: 'three', phase: 'BOOTSTRAP' },
      ],
    });
    // Modified rows too (the task claimed, the turn counted), not only added ones.
    expect(structured<{ task: { id: string } }>(await c.call('loki_task_claim', { taskId: 'first' })).task.id).toBe(
      'first',
    );
    await c.call('loki_status', {});
    await c.close();
    c = undefined;
    return { tree, state, git0, changedTree: workTree(p.root), changedState: lokiState(p.root) };
  }

  // Each point is passed through by a rollback from the changed tree back to cp-2, once its state transaction has
  // committed: the state is restored, the files are not yet (or only partly: rollback-code-removed).
  for (const point of ['rollback-journal-written', 'rollback-code-removed', 'rollback-code-restored']) {
    it(`at ${point}: the state is the checkpoint's, and the next rollback or any other tool call restores the files`, async () => {
      const { tree, state, git0, changedTree } = await changedAfterCheckpoint();

      const killed = loki(['rollback', 'to', 'cp-2', '--code'], { LOKI_FAULT: point });
      expect(killed.signal).toBe('SIGKILL');
      expect(journal(p!.root)).toMatchObject({ target: 'cp-2' });
      expect(lokiState(p!.root)).toEqual(state);
      // Killed before the files were touched, the tree is the old one; later, a mix that the journal will finish.
      if (point === 'rollback-journal-written') expect(workTree(p!.root)).toEqual(changedTree);

      const again = loki(['rollback', 'to', 'cp-2', '--code']);
      expect(again.code, again.err).toBe(0);
      expect(again.out).toMatch(/Finished the interrupted rollback to cp-2/);
      // The state summary is the one the interrupted attempt recorded: tasks second and third removed.
      expect(again.out).toMatch(/State: 0 added, [1-9][0-9]* modified, 2 removed\./);
      const pre = /Pre-rollback checkpoint: (cp-\d+)/.exec(again.out)![1]!;
      expect(workTree(p!.root)).toEqual(tree);
      expect(lokiState(p!.root)).toEqual(state);
      expect(userGit(p!.root)).toEqual(git0);
      expect(journal(p!.root)).toBeUndefined();
      expect(auditLines(p!.root).map((e) => `${e.action} ${e.target}`)).toEqual(
        expect.arrayContaining(['checkpoint.rollback cp-2', 'checkpoint.rollback-files cp-2']),
      );
      // The undo taken by the interrupted attempt holds the broken tree.
      expect(loki(['rollback', 'to', pre, '--code']).code).toBe(0);
      expect(workTree(p!.root)).toEqual(changedTree);

      // Killed again; this time a plain tool call (another process's loki_task_list) finishes it before reading.
      expect(loki(['rollback', 'to', 'cp-2', '--code'], { LOKI_FAULT: point }).signal).toBe('SIGKILL');
      c = await connect(p!);
      expect(text(await c.call('loki_task_list', {}))).not.toMatch(/second/);
      expect(workTree(p!.root)).toEqual(tree);
      expect(journal(p!.root)).toBeUndefined();
    });
  }

  it('inside its state transaction: nothing of it happened, neither state, nor files, nor undo, nor journal', async () => {
    const { state, changedTree, changedState } = await changedAfterCheckpoint();
    const checkpoints = dbRows(p!.root, 'SELECT * FROM checkpoints');
    const audit = auditLines(p!.root);
    expect(loki(['rollback', 'to', 'cp-2', '--code'], { LOKI_FAULT: 'rollback-state-applied' }).signal).toBe('SIGKILL');
    expect(lokiState(p!.root)).toEqual(changedState);
    expect(workTree(p!.root)).toEqual(changedTree);
    expect(dbRows(p!.root, 'SELECT * FROM checkpoints')).toEqual(checkpoints);
    expect(auditLines(p!.root)).toEqual(audit);
    expect(journal(p!.root)).toBeUndefined();
    // What it left on disk (the undo's folder and ref, uncommitted) is replaced by the next checkpoint of that id.
    const ok = loki(['rollback', 'to', 'cp-2', '--code']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/Rolled back to cp-2/);
    expect(lokiState(p!.root)).toEqual(state);
    const pre = /Pre-rollback checkpoint: (cp-\d+)/.exec(ok.out)![1]!;
    expect(loki(['rollback', 'to', pre, '--code']).code).toBe(0);
    expect(workTree(p!.root)).toEqual(changedTree);
  });

  it('a checkpoint killed before its transaction commits leaves no checkpoint, and the next one of that id is whole', async () => {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    expect(loki(['checkpoint', 'doomed'], { LOKI_FAULT: 'checkpoint-before-commit' }).signal).toBe('SIGKILL');
    expect((await list()).checkpoints.map((x) => x.id)).toEqual(['cp-1']);
    write(p.root, 'a.txt', 'after the crash\n');
    const ok = loki(['checkpoint', 'after the crash']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(
      /Checkpoint cp-2 "after the crash" \(code\+state\)\. Return to it with: loki rollback to cp-2 --code/,
    );
    expect(fs.readdirSync(path.join(p.root, '.loki/checkpoints')).filter((n) => n.startsWith('.'))).toEqual([]);
    // Its ref is the new commit's, and it restores.
    const body = JSON.parse(
      dbRows<{ body: string }>(p.root, 'SELECT body FROM checkpoints WHERE seq = 2')[0]!.body,
    ) as { code: { commit: string } };
    expect(git(p.root, 'rev-parse', 'refs/loki/checkpoints/cp-2')).toBe(body.code.commit);
    write(p.root, 'a.txt', 'later\n');
    expect(loki(['rollback', 'to', 'cp-2', '--code']).code).toBe(0);
    expect(fs.readFileSync(path.join(p.root, 'a.txt'), 'utf8')).toBe('after the crash\n');
  });
});

describe('loki checkpoint / loki rollback', () => {
  const CLI = path.join(DIST, 'loki.js');
  const loki = (args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p!.root, env: p!.env, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('creates, lists, rolls back and prints the undo id; usage errors exit 2', async () => {
    p = gitProject();
    expect(loki(['rollback', 'latest']).err).toMatch(/no checkpoint to roll back to yet/);
    const made = loki(['checkpoint', 'first point']);
    expect(made.code).toBe(0);
    expect(made.out).toMatch(/Checkpoint cp-1 "first point" \(code\+state\)/);
    write(p.root, 'a.txt', 'changed\n');
    write(p.root, 'extra.txt', 'extra\n');
    const listed = loki(['rollback', 'list']);
    expect(listed.out).toMatch(/cp-1\*\s+manual .*code\+state\s+first point/);
    const rolled = loki(['rollback', 'latest', '--code']);
    expect(rolled.code, rolled.err).toBe(0);
    expect(rolled.out).toMatch(
      /Rolled back to cp-1 "first point" \(code\+state\)\.\nFiles: 0 added, 1 modified, 1 removed\n {2}~ a\.txt\n {2}- extra\.txt/,
    );
    expect(rolled.out).toMatch(/Pre-rollback checkpoint: cp-2\. Undo with: loki rollback to cp-2 --code/);
    expect(fs.existsSync(path.join(p.root, 'extra.txt'))).toBe(false);
    const json = JSON.parse(loki(['rollback', 'list', '--json']).out) as { latest: string; checkpoints: Row[] };
    expect(json.latest).toBe('cp-1');
    expect(json.checkpoints.map((x) => `${x.id} ${x.kind}`)).toEqual(['cp-2 pre-rollback', 'cp-1 manual']);
    expect(loki(['rollback', 'to', 'cp-2', '--code']).code).toBe(0);
    expect(fs.readFileSync(path.join(p.root, 'extra.txt'), 'utf8')).toBe('extra\n');
    expect(loki(['rollback']).code).toBe(2);
    expect(loki(['rollback', 'to']).err).toMatch(/usage: loki rollback list/);
    expect(loki(['rollback', 'sideways']).code).toBe(2);
    expect(loki(['checkpoint', 'a', 'b']).code).toBe(2);
    const bad = loki(['rollback', 'to', 'cp-77']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/no checkpoint "cp-77"/);
  });
});
