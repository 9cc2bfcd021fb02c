/**
 * Checkpoints and rollback through the real tools on real temporary git repositories: byte-for-byte restores of
 * tracked, untracked and `.loki/` files, undo, the user's HEAD/branch/index/stash never touched (asked of git
 * itself), retention, damaged checkpoints, the lock refusal, and projects outside git.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DIST, auditLines, connect, git, structured, tempProject, text, type Connected, type TempProject } from './helpers.js';
import { spawnChild, type Child } from './fixtures/children.js';
import { privateBundle } from './fixtures/bundle.js';

let p: TempProject | undefined;
let c: Connected | undefined;
const children: Child[] = [];
afterEach(async () => {
  for (const k of children.splice(0)) k.proc.kill('SIGKILL');
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
      else out[r] = `${(st.mode & 0o111) !== 0 ? 'x' : '-'}:${crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`;
    }
  };
  walk(root, '');
  return out;
}

/** The captured `.loki/` state files (what a rollback restores) with their bytes. */
function lokiState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const skip = new Set(['audit', 'checkpoints', 'locks', 'memory', 'sessions', 'quarantine', 'logs']);
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if ((rel === '' && skip.has(name)) || r === 'queue/changes.log' || name.endsWith('.tmp')) continue;
      const abs = path.join(dir, name);
      if (fs.lstatSync(abs).isDirectory()) walk(abs, r);
      else out[r] = fs.readFileSync(abs, 'utf8');
    }
  };
  walk(path.join(root, '.loki'), '');
  return out;
}

/** What the user's git sees: HEAD, branch, index bytes, staged diff, stash list, HEAD's reflog. */
function userGit(root: string) {
  return {
    head: git(root, 'rev-parse', 'HEAD'),
    branch: git(root, 'symbolic-ref', 'HEAD'),
    index: crypto.createHash('sha256').update(fs.readFileSync(path.join(root, '.git', 'index'))).digest('hex'),
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
  const t = tempProject({ git: true, files: { 'a.txt': 'alpha\n', 'dir/b.txt': 'bravo\n', 'run.sh': '#!/bin/sh\necho hi\n', '.gitignore': '*.log\n', 'keep.txt': 'k\n' } });
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

async function list(kind?: string): Promise<{ checkpoints: Row[]; latest: string | null; total: number; damaged: { id: string; problem: string }[] }> {
  return structured(await c!.call('loki_checkpoint_list', kind ? { kind, limit: 100 } : { limit: 100 }));
}

describe('checkpoints and rollback in a git repository', () => {
  it('restores tracked, untracked and .loki/ files byte for byte, undoes the rollback, and never touches HEAD, branch, index, stash', async () => {
    p = gitProject();
    c = await connect(p);
    const git0 = userGit(p.root);
    const started = structured<{ checkpoint: string | null }>(await c.call('loki_start', { specText: '# Shop\n- list products\n- search\n', tier: 'simple' }));
    expect(started.checkpoint).toBe('cp-1');
    const made = structured<{ checkpoint: Row }>(await c.call('loki_checkpoint_create', { label: 'base', reason: 'before the risky part' }));
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
    expect(structured(await c.call('loki_task_add', { tasks: [{ id: 'extra', title: 'added after the checkpoint' }] }))).toBeTruthy();
    expect((await c.call('loki_memory_record', { layer: 'episode', title: 'learned something', outcome: 'success', lessons: ['keep me'] })).isError).toBeFalsy();
    const memoryFiles = fs.readdirSync(path.join(p.root, '.loki/memory'), { recursive: true }).sort();
    const treeChanged = workTree(p.root);
    const stateChanged = lokiState(p.root);
    expect(treeChanged).not.toEqual(treeAtBase);
    expect(stateChanged).not.toEqual(stateAtBase);

    const r = await c.call('loki_rollback', { target: 'cp-2', code: true });
    const rolled = structured<Rolled>(r);
    expect(rolled).toMatchObject({ target: 'cp-2', scope: 'code+state', resumed: false });
    expect(rolled.changes.code).toMatchObject({ added: 1, modified: 3, removed: 2 });
    expect(rolled.changes.code!.paths).toEqual(expect.arrayContaining(['+ dir/b.txt', '- new.txt', '- newdir/deep/c.txt', '~ a.txt', '~ untracked.txt', '~ run.sh']));
    expect(rolled.changes.state.removed).toBeGreaterThan(0);
    expect(text(r)).toMatch(new RegExp(`Undo: loki_rollback target "${rolled.preRollback}"`));

    // The ignored file keeps its new bytes; everything else is exactly as at the checkpoint.
    expect(workTree(p.root)).toEqual({ ...treeAtBase, 'ignored.log': treeChanged['ignored.log'] });
    expect(fs.existsSync(path.join(p.root, 'newdir'))).toBe(false);
    expect(lokiState(p.root)).toEqual(stateAtBase);
    expect(fs.readdirSync(path.join(p.root, '.loki/memory'), { recursive: true }).sort()).toEqual(memoryFiles);
    expect(userGit(p.root)).toEqual(git0);
    // The queue view of this very process follows the restored files.
    const rows = structured<{ rows: { id: string }[] }>(await c.call('loki_task_list', {})).rows.map((t) => t.id);
    expect(rows).not.toContain('extra');

    // `latest` never names the pre-rollback checkpoint.
    const after = await list();
    expect(after.checkpoints.find((x) => x.id === rolled.preRollback)).toMatchObject({ kind: 'pre-rollback', label: 'before rollback to cp-2' });
    expect(after.latest).toBe('cp-2');

    // Roll back the rollback.
    const undo = structured<Rolled>(await c.call('loki_rollback', { target: rolled.preRollback, code: true }));
    expect(undo.changes.code).toMatchObject({ added: 2, modified: 3, removed: 1 });
    expect(workTree(p.root)).toEqual(treeChanged);
    expect(lokiState(p.root)).toEqual(stateChanged);
    expect(userGit(p.root)).toEqual(git0);
    expect(structured<{ rows: { id: string }[] }>(await c.call('loki_task_list', {})).rows.map((t) => t.id)).toContain('extra');

    const actions = auditLines(p.root).map((e) => `${e.action} ${e.target}`);
    expect(actions).toEqual(expect.arrayContaining(['checkpoint.create cp-1', 'checkpoint.create cp-2', 'checkpoint.rollback cp-2', `checkpoint.rollback ${rolled.preRollback}`]));
    // The refs are ours; the user's refs are the branch and the stash.
    expect(git(p.root, 'for-each-ref', '--format=%(refname)', 'refs/loki/checkpoints')).toContain('refs/loki/checkpoints/cp-2');
  });

  it('rolls back .loki/ state only when code is false, and takes automatic checkpoints at start, per task and before a phase change', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_TASK_SPACING: '0' });
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', { tasks: [{ title: 'bootstrap it', phase: 'BOOTSTRAP' }] });
    const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
    write(p.root, 'a.txt', 'work for the task\n');
    const done = structured<{ checkpoint: string | null }>(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'did it' }));
    expect(done.checkpoint).toBe('cp-2');
    write(p.root, 'a.txt', 'more work before the phase change\n');
    expect(text(await c.call('loki_phase_advance', {}))).toMatch(/DEVELOPMENT/);
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
    const done = structured<{ checkpoint: string | null }>(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'x' }));
    expect(done.checkpoint).toBeNull();
    // Phase advance is refused (open tasks), so no checkpoint either; then an unchanged project coalesces.
    const { createCheckpoint } = await import('../mcp-server/src/checkpoints/create.js');
    const first = await createCheckpoint(c.project, { kind: 'auto', trigger: 'phase-advance', label: 'x', reason: null }, true);
    const again = await createCheckpoint(c.project, { kind: 'auto', trigger: 'phase-advance', label: 'x', reason: null }, true);
    expect('created' in first).toBe(true);
    expect(again).toEqual({ unchanged: (first as { created: { id: string } }).created.id });
    write(p.root, 'a.txt', 'changed\n');
    expect('created' in (await createCheckpoint(c.project, { kind: 'auto', trigger: 'phase-advance', label: 'x', reason: null }, true))).toBe(true);
  });

  it('coalesces completed-task checkpoints that come closer together than the spacing', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_TASK_SPACING: '30' });
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', { tasks: [{ title: 'one', phase: 'BOOTSTRAP' }, { title: 'two', phase: 'BOOTSTRAP' }] });
    for (let i = 0; i < 2; i++) {
      const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
      write(p.root, `f${i}.txt`, 'x\n');
      expect(structured<{ checkpoint: string | null }>(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'x' })).checkpoint).toBeNull();
    }
    expect((await list('auto')).checkpoints.map((x) => x.trigger)).toEqual(['run-start']);
  });

  it('keeps exactly the configured number of automatic checkpoints; manual ones survive, with their refs and stored files', async () => {
    p = gitProject();
    c = await connect(p, { LOKI_CHECKPOINT_RETENTION: '3', LOKI_CHECKPOINT_TASK_SPACING: '0' });
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    await c.call('loki_task_add', { tasks: Array.from({ length: 6 }, (_, i) => ({ title: `feature ${i}`, phase: 'BOOTSTRAP' })) });
    await c.call('loki_checkpoint_create', { label: 'manual one' });
    // A pack a crash left before its checkpoint was published (and its temp file): swept by the next removal.
    const orphan = path.join(p.root, '.loki/checkpoints/objects/packs', `${'ab'.repeat(32)}.pack`);
    fs.writeFileSync(orphan, 'left by a crash');
    for (let i = 0; i < 6; i++) {
      const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', {}));
      write(p.root, `f${i}.txt`, `${i}\n`);
      await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'x' });
      if (i === 2) await c.call('loki_checkpoint_create', { label: 'manual two' });
    }
    const all = await list();
    expect(all.checkpoints.filter((x) => x.kind === 'auto')).toHaveLength(3);
    expect(all.checkpoints.filter((x) => x.kind === 'manual').map((x) => x.label).sort()).toEqual(['manual one', 'manual two']);
    const refs = git(p.root, 'for-each-ref', '--format=%(refname:short)', 'refs/loki/checkpoints').split('\n').map((x) => x.replace('loki/checkpoints/', '')).sort();
    expect(refs).toEqual(all.checkpoints.map((x) => x.id).sort());
    // Every checkpoint left is restorable: roll back to the oldest manual one and back.
    const oldest = all.checkpoints.find((x) => x.label === 'manual one')!;
    const r = structured<Rolled>(await c.call('loki_rollback', { target: oldest.id, code: true }));
    expect(fs.existsSync(path.join(p.root, 'f0.txt'))).toBe(false);
    await c.call('loki_rollback', { target: r.preRollback, code: true });
    expect(fs.readFileSync(path.join(p.root, 'f5.txt'), 'utf8')).toBe('5\n');
    // Stored contents referenced by no checkpoint were removed: the packs left are exactly those the manifests name.
    const packs = fs.readdirSync(path.join(p.root, '.loki/checkpoints/objects/packs')).filter((f) => f.endsWith('.pack'));
    const referenced = new Set<string>();
    for (const row of (await list()).checkpoints) {
      const m = JSON.parse(fs.readFileSync(path.join(p.root, '.loki/checkpoints', row.id, 'state.json'), 'utf8')) as { files: { pack?: string }[] };
      for (const f of m.files) referenced.add(`${f.pack}.pack`);
    }
    expect(packs.sort()).toEqual([...referenced].sort());
    expect(fs.existsSync(orphan)).toBe(false);
  });

  it('refuses a damaged checkpoint and changes nothing', async () => {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n- one\n', tier: 'simple' });
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
    // A stored state file is corrupted (every checkpoint holding it is refused), then put back.
    const manifest = JSON.parse(fs.readFileSync(path.join(p.root, '.loki/checkpoints/cp-2/state.json'), 'utf8')) as { files: { pack: string; offset: number }[] };
    const victim = path.join(p.root, '.loki/checkpoints/objects/packs', `${manifest.files[0]!.pack}.pack`);
    const good = fs.readFileSync(victim);
    const flipped = Buffer.from(good);
    const at = manifest.files[0]!.offset;
    flipped[at] = flipped[at]! ^ 1;
    fs.writeFileSync(victim, flipped);
    await refused('cp-2', /stored state file\(s\) are missing or damaged/);
    fs.writeFileSync(victim, good);
    // cp-2: its manifest is gone; cp-3: its git ref is gone; cp-4: its record is not valid JSON.
    fs.rmSync(path.join(p.root, '.loki/checkpoints/cp-2/state.json'));
    git(p.root, 'update-ref', '-d', 'refs/loki/checkpoints/cp-3');
    fs.writeFileSync(path.join(p.root, '.loki/checkpoints/cp-4/checkpoint.json'), '{ not json');
    await refused('cp-2', /state\.json is missing/);
    await refused('cp-3', /git ref refs\/loki\/checkpoints\/cp-3 is missing/);
    await refused('cp-4', /checkpoint\.json is damaged/);
    expect((await c.call('loki_rollback', { target: 'cp-99', code: true })).content).toEqual([{ type: 'text', text: expect.stringMatching(/no checkpoint "cp-99"/) }]);
    expect((await c.call('loki_rollback', { target: '../x', code: true })).isError).toBe(true);
    expect(workTree(p.root)).toEqual(before.tree);
    expect(lokiState(p.root)).toEqual(before.state);
    expect(userGit(p.root)).toEqual(before.git);
    const now = await list();
    expect(now.damaged).toEqual([{ id: 'cp-4', problem: expect.stringMatching(/checkpoint\.json is damaged/) }]);
    expect(now.total).toBe(before.list.total - 1);
  });

  it('refuses while another process holds the state lock, naming it', async () => {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n- one\n', tier: 'simple' });
    const bundle = await privateBundle();
    try {
      const holder = spawnChild('lock-holder.mjs', [path.join(p.root, '.loki', 'locks'), 'state'], { LOKI_BUNDLE: bundle.file });
      children.push(holder);
      const pid = (await holder.line(/^held /)).split(' ')[1];
      const before = lokiState(p.root);
      const t0 = Date.now();
      const r = await c.call('loki_rollback', { target: 'latest', code: true });
      expect(Date.now() - t0).toBeLessThan(8_000);
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(new RegExp(`refused: pid ${pid} .*holds the state lock.*run the rollback again`));
      expect(lokiState(p.root)).toEqual(before);
      expect((await list('pre-rollback')).total).toBe(0);
    } finally {
      bundle.cleanup();
    }
  });
});

describe('checkpoints outside a git repository', () => {
  it('cover .loki/ state only, say so, and refuse to restore code', async () => {
    p = tempProject({ files: { 'notes.txt': 'n\n' } });
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n- one\n', tier: 'simple' });
    const made = await c.call('loki_checkpoint_create', { label: 'plain' });
    expect(structured<{ checkpoint: Row }>(made).checkpoint).toMatchObject({ scope: 'state only', note: expect.stringMatching(/not a git repository.*state only/) });
    expect(text(made)).toMatch(/state only: not a git repository/);
    const id = structured<{ checkpoint: Row }>(made).checkpoint.id;
    const state = lokiState(p.root);
    await c.call('loki_task_add', { tasks: [{ id: 'later', title: 'later' }] });
    write(p.root, 'notes.txt', 'changed\n');
    const refused = await c.call('loki_rollback', { target: id, code: true });
    expect(text(refused)).toMatch(/has no code snapshot \(not a git repository.*roll back with code: false/);
    const r = structured<Rolled>(await c.call('loki_rollback', { target: id, code: false }));
    expect(r).toMatchObject({ scope: 'state only', changes: { code: null } });
    expect(r.note).toMatch(/not a git repository/);
    expect(lokiState(p.root)).toEqual(state);
    expect(fs.readFileSync(path.join(p.root, 'notes.txt'), 'utf8')).toBe('changed\n');
  });
});

describe('a rollback killed with SIGKILL', () => {
  const CLI = path.join(DIST, 'loki.js');
  const loki = (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p!.root, env: { ...p!.env, ...env }, encoding: 'utf8' });
    return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
  };

  // Each point is passed through by a rollback from the changed tree back to cp-2 (rollback-state-file@2: in the
  // middle of writing the state files).
  for (const point of ['rollback-journal-written', 'rollback-code-removed', 'rollback-code-restored', 'rollback-state-file@2', 'rollback-state-restored']) {
    it(`at ${point}: the next rollback completes it, and any other tool call finishes it first`, async () => {
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
      await c.call('loki_task_add', { tasks: [{ id: 'second', title: 'two', phase: 'BOOTSTRAP' }, { id: 'third', title: 'three', phase: 'BOOTSTRAP' }] });
      // Modified state files too (the task claimed, the turn counted), so the restore writes more than one.
      expect(structured<{ task: { id: string } }>(await c.call('loki_task_claim', { taskId: 'first' })).task.id).toBe('first');
      await c.call('loki_status', {});
      const changedTree = workTree(p.root);
      await c.close();
      c = undefined;

      const killed = loki(['rollback', 'to', 'cp-2', '--code'], { LOKI_FAULT: point });
      expect(killed.signal).toBe('SIGKILL');
      expect(fs.existsSync(path.join(p.root, '.loki/checkpoints/rollback.json'))).toBe(true);
      // Killed before anything changed, the tree is the old one; later, a mix that the journal will finish.
      if (point === 'rollback-journal-written') expect(workTree(p.root)).toEqual(changedTree);

      const again = loki(['rollback', 'to', 'cp-2', '--code']);
      expect(again.code, again.err).toBe(0);
      expect(again.out).toMatch(/Finished the interrupted rollback to cp-2/);
      const pre = /Pre-rollback checkpoint: (cp-\d+)/.exec(again.out)![1]!;
      expect(workTree(p.root)).toEqual({ ...tree, 'ignored.log': tree['ignored.log'] });
      expect(lokiState(p.root)).toEqual(state);
      expect(userGit(p.root)).toEqual(git0);
      expect(fs.existsSync(path.join(p.root, '.loki/checkpoints/rollback.json'))).toBe(false);
      // The undo taken before the interrupted attempt still holds the broken tree.
      expect(loki(['rollback', 'to', pre, '--code']).code).toBe(0);
      expect(workTree(p.root)).toEqual(changedTree);

      // Killed again; this time a plain tool call (another process's loki_status) finishes it before reading.
      expect(loki(['rollback', 'to', 'cp-2', '--code'], { LOKI_FAULT: point }).signal).toBe('SIGKILL');
      c = await connect(p);
      expect(text(await c.call('loki_task_list', {}))).not.toMatch(/second/);
      expect(workTree(p.root)).toEqual(tree);
      expect(fs.existsSync(path.join(p.root, '.loki/checkpoints/rollback.json'))).toBe(false);
    });
  }

  it('a checkpoint killed before it is published leaves no checkpoint, and the next one is whole', async () => {
    p = gitProject();
    c = await connect(p);
    await c.call('loki_start', { specText: '# App\n', tier: 'simple' });
    expect(loki(['checkpoint', 'doomed'], { LOKI_FAULT: 'checkpoint-before-publish' }).signal).toBe('SIGKILL');
    expect((await list()).checkpoints.map((x) => x.label)).toEqual(['run ' + (await list()).checkpoints[0]!.label.split(' ')[1] + ' started']);
    const ok = loki(['checkpoint', 'after the crash']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/Checkpoint cp-2 "after the crash" \(code\+state\)\. Return to it with: loki rollback to cp-2 --code/);
    expect(fs.readdirSync(path.join(p.root, '.loki/checkpoints')).filter((n) => n.startsWith('.'))).toEqual([]);
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
    expect(rolled.out).toMatch(/Rolled back to cp-1 "first point" \(code\+state\)\.\nFiles: 0 added, 1 modified, 1 removed\n {2}~ a\.txt\n {2}- extra\.txt/);
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
