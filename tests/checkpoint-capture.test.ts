/**
 * How a checkpoint captures `.loki/` state while agents keep working the queue: the change feed's marks, the
 * unlocked prescan completed under the locks (one consistent moment, equal to a scan made entirely under them),
 * hashes reused only for files whose change time proves them unchanged, and packs (one new file per checkpoint,
 * unchanged contents pointing into older packs, mostly-dead packs copied forward, damage detected).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { autoCheckpoint, createCheckpoint, storedBase, withCheckpointLocks } from '../mcp-server/src/checkpoints/create.js';
import { readCatalog, readManifest } from '../mcp-server/src/checkpoints/catalog.js';
import { packFile, readStored } from '../mcp-server/src/checkpoints/packs.js';
import { completeScan, prescanState, scanState } from '../mcp-server/src/checkpoints/state.js';
import { Project } from '../mcp-server/src/project.js';
import { addTasks, claimTask, completeTask } from '../mcp-server/src/queue/operations.js';
import { feedMark, restartFeed, writtenSince } from '../mcp-server/src/queue/feed.js';
import { CHANGE_FEED } from '../mcp-server/src/queue/records.js';
import { connect, tempProject, type Connected, type TempProject } from './helpers.js';

let p: TempProject | undefined;
let c: Connected | undefined;
let project: Project | undefined;
afterEach(async () => {
  await c?.close();
  c = undefined;
  project?.close();
  project = undefined;
  p?.cleanup();
  p = undefined;
});

/** A project with a run and `n` tasks, and a Project handle on it for the library calls. */
async function queueProject(n: number): Promise<Project> {
  p = tempProject();
  c = await connect(p);
  await c.call('loki_start', { specText: '# Capture\n' });
  project = new Project({ root: p.root, env: p.env, actor: 'test' });
  await addTasks(
    project,
    Array.from({ length: n }, (_, i) => ({ id: `c${i}`, title: `task ${i}`, phase: 'BOOTSTRAP' as const })),
    'agent',
  );
  return project;
}

const auto = { kind: 'auto', trigger: 'manual', label: 'test', reason: null } as const;

async function claimAndComplete(proj: Project, agent: string): Promise<string> {
  const r = await claimTask(proj, { agent });
  await completeTask(proj, r.task!.id, r.token!, 'done', []);
  return r.task!.id;
}

describe('the change feed as checkpoints read it', () => {
  it('marks a line start and tells which tasks were written since; a restarted or torn feed cannot tell', async () => {
    const proj = await queueProject(4);
    const store = proj.openStore();
    const mark = feedMark(store)!;
    expect(mark).toBeDefined();
    const a = await claimAndComplete(proj, 'a');
    const b = (await claimTask(proj, { agent: 'b' })).task!.id;
    expect([...writtenSince(store, mark)!].sort()).toEqual([a, b].sort());
    // Up to a later mark only.
    const later = feedMark(store)!;
    const cId = (await claimTask(proj, { agent: 'c' })).task!.id;
    expect([...writtenSince(store, mark, later)!].sort()).toEqual([a, b].sort());
    expect([...writtenSince(store, later)!]).toEqual([cId]);
    // A half-written line at the end: the mark stays before it; under the lock it means "cannot tell".
    const feed = path.join(p!.root, '.loki', CHANGE_FEED);
    const whole = fs.statSync(feed).size;
    fs.appendFileSync(feed, 't3 in-prog');
    expect(feedMark(store)!.offset).toBe(whole);
    expect(writtenSince(store, later)).toBeUndefined();
    // Restarted: a new file.
    restartFeed(store);
    expect(writtenSince(store, later)).toBeUndefined();
  });
});

describe('a capture in two steps', () => {
  it('a prescan completed under the locks equals a scan made entirely under them, whatever changed in between', async () => {
    const proj = await queueProject(40);
    const store = proj.openStore();
    const base = storedBase(store).stored;
    const pre = await prescanState(store, base);
    // While the locks are free: tasks are claimed and completed, a state file is rewritten, one is added.
    for (let i = 0; i < 5; i++) await claimAndComplete(proj, `agent-${i}`);
    await claimTask(proj, { agent: 'holder' });
    fs.mkdirSync(path.join(p!.root, '.loki/notes'), { recursive: true });
    fs.writeFileSync(path.join(p!.root, '.loki/notes/new.txt'), 'added after the prescan\n');
    const { completed, full } = await withCheckpointLocks(store, () => ({
      completed: completeScan(store, pre, false, base),
      full: scanState(store, base),
    }));
    expect(completed.entries).toEqual(full.entries);
    expect(completed.digest).toBe(full.digest);
    expect(completed.entries.map((e) => e.path)).toContain('notes/new.txt');
    // Every content the capture needs is in hand, or stored already by the newest checkpoint (loki_start's).
    for (const e of completed.entries) expect(completed.contents.has(e.sha256) || base.has(e.sha256)).toBe(true);
  });

  it('a file rewritten with the same size and its old modification time is read again (its change time moved)', async () => {
    const proj = await queueProject(3);
    const store = proj.openStore();
    const rel = '.loki/notes/fixed.txt';
    const file = path.join(p!.root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'AAAA\n');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    await new Promise((r) => setTimeout(r, 150));
    const first = await createCheckpoint(proj, auto);
    expect('created' in first).toBe(true);
    // Same size, same mtime, new content, in place (same inode).
    fs.writeFileSync(file, 'BBBB\n');
    fs.utimesSync(file, old, old);
    const second = await createCheckpoint(proj, { ...auto, label: 'again' });
    if (!('created' in second)) throw new Error('expected a new checkpoint');
    const m = readManifest(store, second.created);
    if (!('entries' in m)) throw new Error(m.problem);
    const entry = m.entries.find((e) => e.path === 'notes/fixed.txt')!;
    expect(readStored(store, entry)!.toString()).toBe('BBBB\n');
  });
});

describe('hashes taken from the newest checkpoint', () => {
  it('only for the very version it hashed: a folder renamed over another, with old times and the same size, is read', async () => {
    const proj = await queueProject(1);
    const store = proj.openStore();
    for (const [dir, text] of [
      ['a', 'BBBB\n'],
      ['b', 'AAAA\n'],
    ]) {
      fs.mkdirSync(path.join(p!.root, '.loki/notes', dir!), { recursive: true });
      fs.writeFileSync(path.join(p!.root, '.loki/notes', dir!, 'x.txt'), text!);
    }
    await new Promise((r) => setTimeout(r, 250));
    expect('created' in (await createCheckpoint(proj, auto))).toBe(true);
    // notes/b/x.txt becomes what notes/a/x.txt was: same size, times from before that checkpoint's scan.
    fs.rmSync(path.join(p!.root, '.loki/notes/b'), { recursive: true });
    fs.renameSync(path.join(p!.root, '.loki/notes/a'), path.join(p!.root, '.loki/notes/b'));
    const out = await createCheckpoint(proj, { ...auto, label: 'after the rename' });
    if (!('created' in out)) throw new Error('expected a new checkpoint');
    const m = readManifest(store, out.created);
    if (!('entries' in m)) throw new Error(m.problem);
    expect(m.entries.map((e) => e.path).filter((x) => x.startsWith('notes/'))).toEqual(['notes/b/x.txt']);
    expect(readStored(store, m.entries.find((e) => e.path === 'notes/b/x.txt')!)!.toString()).toBe('BBBB\n');
  });
});

describe('packs', () => {
  const note = (rel: string, text: string) => {
    const file = path.join(p!.root, '.loki/notes', rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  };
  const manifestOf = (proj: Project, id: string) => {
    const store = proj.openStore();
    const r = readCatalog(store).records.find((x) => x.id === id)!;
    const m = readManifest(store, r);
    if (!('entries' in m)) throw new Error(m.problem);
    return m.entries;
  };
  const packSize = (name: string) => fs.statSync(path.join(p!.root, '.loki', packFile(name))).size;
  /** The bytes of the distinct contents a manifest finds in a pack. */
  const packedBytes = (entries: { sha256: string; size: number; pack?: string }[], name: string) =>
    [...new Map(entries.filter((e) => e.pack === name).map((e) => [e.sha256, e.size])).values()].reduce((a, b) => a + b, 0);

  it('one new pack per checkpoint holding only new contents; unchanged ones point into older packs; mostly-dead packs are copied forward', async () => {
    const proj = await queueProject(1);
    for (const n of ['a', 'b', 'c', 'd']) note(`${n}.txt`, `${n.repeat(1000)}\n`);
    const one = await createCheckpoint(proj, auto);
    if (!('created' in one)) throw new Error('expected a checkpoint');
    const all1 = manifestOf(proj, one.created.id);
    const m1 = all1.filter((e) => e.path.startsWith('notes/'));
    // The four new contents went into one new pack, which holds nothing else than new contents.
    const packs1 = new Set(m1.map((e) => e.pack));
    expect(packs1.size).toBe(1);
    expect(packSize([...packs1][0]!)).toBe(packedBytes(all1, [...packs1][0]!));

    // One small change: the new pack holds just that content.
    note('a.txt', 'A changed\n');
    const two = await createCheckpoint(proj, { ...auto, label: 'two' });
    if (!('created' in two)) throw new Error('expected a checkpoint');
    const m2 = manifestOf(proj, two.created.id);
    const a2 = m2.find((e) => e.path === 'notes/a.txt')!;
    expect(packs1.has(a2.pack)).toBe(false);
    expect(packSize(a2.pack!)).toBe(packedBytes(m2, a2.pack!));
    expect(packSize(a2.pack!)).toBeLessThan(1000);
    for (const e of m2.filter((x) => x.path.startsWith('notes/') && x.path !== 'notes/a.txt')) expect(packs1.has(e.pack)).toBe(true);

    // b, c and d change too: less than half of the first pack is still referenced, so what is left of it moves.
    for (const n of ['b', 'c', 'd']) note(`${n}.txt`, `${n.toUpperCase()} changed\n`);
    const three = await createCheckpoint(proj, { ...auto, label: 'three' });
    if (!('created' in three)) throw new Error('expected a checkpoint');
    const m3 = manifestOf(proj, three.created.id);
    expect(m3.some((e) => packs1.has(e.pack))).toBe(false);
    const store = proj.openStore();
    for (const e of m3) expect(readStored(store, e)).toBeDefined();
  });

  it('a content to be moved out of a damaged pack is taken from its file when the file still holds it', async () => {
    const proj = await queueProject(1);
    for (const n of ['a', 'b', 'c', 'd']) note(`${n}.txt`, `${n.repeat(1000)}\n`);
    const one = await createCheckpoint(proj, auto);
    if (!('created' in one)) throw new Error('expected a checkpoint');
    const d = manifestOf(proj, one.created.id).find((e) => e.path === 'notes/d.txt')!;
    // d's stored copy is damaged (same length), and a, b, c change: d is due to move to the new pack.
    const file = path.join(p!.root, '.loki', packFile(d.pack!));
    const bytes = fs.readFileSync(file);
    bytes[d.offset!] = bytes[d.offset!]! ^ 1;
    fs.writeFileSync(file, bytes);
    for (const n of ['a', 'b', 'c']) note(`${n}.txt`, `${n.toUpperCase()} changed\n`);
    const two = await createCheckpoint(proj, { ...auto, label: 'two' });
    if (!('created' in two)) throw new Error('expected a checkpoint');
    const moved = manifestOf(proj, two.created.id).find((e) => e.path === 'notes/d.txt')!;
    expect(moved.pack).not.toBe(d.pack);
    expect(readStored(proj.openStore(), moved)!.toString()).toBe(`${'d'.repeat(1000)}\n`);
  });

  it('a damaged pack is detected on read, and the next checkpoint stores its contents again', async () => {
    const proj = await queueProject(1);
    note('x.txt', 'x content\n');
    const one = await createCheckpoint(proj, auto);
    if (!('created' in one)) throw new Error('expected a checkpoint');
    const store = proj.openStore();
    const entry = manifestOf(proj, one.created.id).find((e) => e.path === 'notes/x.txt')!;
    const file = path.join(p!.root, '.loki', packFile(entry.pack!));
    fs.truncateSync(file, entry.offset!);
    expect(readStored(store, entry)).toBeUndefined();
    note('y.txt', 'y content\n');
    const two = await createCheckpoint(proj, { ...auto, label: 'two' });
    if (!('created' in two)) throw new Error('expected a checkpoint');
    const again = manifestOf(proj, two.created.id).find((e) => e.path === 'notes/x.txt')!;
    expect(again.pack).not.toBe(entry.pack);
    expect(readStored(store, again)!.toString()).toBe('x content\n');
  });
});

describe('completed-task checkpoints in time', () => {
  const marker = () => path.join(p!.root, '.loki/checkpoints/last-auto');

  it('are spaced at least ten times what the last one cost', async () => {
    const proj = await queueProject(3);
    const r = await claimTask(proj, { agent: 'a' });
    await completeTask(proj, r.task!.id, r.token!, 'done', []);
    // The last automatic checkpoint, 5 s ago, cost 1 s: the next is due 10 s after it.
    fs.writeFileSync(marker(), '1000');
    const fiveSecondsAgo = new Date(Date.now() - 5_000);
    fs.utimesSync(marker(), fiveSecondsAgo, fiveSecondsAgo);
    expect(await autoCheckpoint(proj, 'task-complete', 'too soon')).toBeNull();
    // Cheap: the configured spacing (1 s) has passed, so one is taken.
    fs.writeFileSync(marker(), '20');
    fs.utimesSync(marker(), fiveSecondsAgo, fiveSecondsAgo);
    expect(await autoCheckpoint(proj, 'task-complete', 'due')).toMatch(/^cp-\d+$/);
  });

  it('are left by the queue owner to the agents it serves, unless overdue', async () => {
    const owner = await queueProject(4);
    const other = new Project({ root: p!.root, env: p!.env, actor: 'other' });
    try {
      const first = await claimTask(owner, { agent: 'owner' });
      await completeTask(owner, first.task!.id, first.token!, 'done', []);
      const second = await claimTask(other, { agent: 'other' });
      await completeTask(other, second.task!.id, second.token!, 'done', []);
      expect(owner.servesQueueClients()).toBe(true);
      expect(other.servesQueueClients()).toBe(false);
      const twoSecondsAgo = new Date(Date.now() - 2_000);
      fs.utimesSync(marker(), twoSecondsAgo, twoSecondsAgo);
      fs.writeFileSync(marker(), '0');
      fs.utimesSync(marker(), twoSecondsAgo, twoSecondsAgo);
      expect(await autoCheckpoint(owner, 'task-complete', 'owner')).toBeNull();
      expect(await autoCheckpoint(other, 'task-complete', 'other')).toMatch(/^cp-\d+$/);
      // Overdue (none for a minute): the owner takes it after all.
      const aMinuteAgo = new Date(Date.now() - 60_000);
      fs.utimesSync(marker(), aMinuteAgo, aMinuteAgo);
      await claimAndComplete(owner, 'owner');
      expect(await autoCheckpoint(owner, 'task-complete', 'owner, overdue')).toMatch(/^cp-\d+$/);
    } finally {
      other.close();
    }
  });
});
