/**
 * Memory across processes: two spawned processes recording at once lose nothing, and a server's warm index
 * finds what another process recorded without a restart. Children run tests/fixtures/memory-recorder.mjs
 * against a private bundle of the current sources (see fixtures/bundle.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateBundle, privateBundle } from './fixtures/bundle.js';
import { type Child, spawnChild } from './fixtures/children.js';
import { auditLines, connect, structured, tempProject, type TempProject } from './helpers.js';

let bundle: PrivateBundle;
const living = new Set<Child>();
const projects: TempProject[] = [];

beforeAll(async () => {
  bundle = await privateBundle();
});
afterAll(() => {
  for (const c of living) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  bundle?.cleanup();
  for (const p of projects) p.cleanup();
});

function recorder(p: TempProject, id: number, count: number, barrier: boolean): Child {
  const args = [p.root, p.home, String(id), String(count), ...(barrier ? ['--barrier'] : [])];
  const c = spawnChild('memory-recorder.mjs', args, { LOKI_BUNDLE: bundle.file, LOKI_HOME: p.home });
  living.add(c);
  return c;
}

interface Done {
  id: number;
  recorded: number;
  ids: string[];
}

describe('memory across processes', () => {
  it('two processes recording 300 episodes each at once lose nothing', async () => {
    const p = tempProject();
    projects.push(p);
    const children = [recorder(p, 1, 300, true), recorder(p, 2, 300, true)];
    await Promise.all(children.map((c) => c.line(/^ready$/)));
    for (const c of children) c.proc.stdin!.write('go\n');
    const done = (await Promise.all(children.map((c) => c.line(/^\{/, 120_000)))).map((l) => JSON.parse(l) as Done);
    const all = done.flatMap((d) => d.ids);
    expect(all).toHaveLength(600);
    expect(new Set(all).size).toBe(600);
    const files = fs.readdirSync(path.join(p.root, '.loki/memory/episodes')).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(all.map((id) => `${id}.json`).sort());
    const feed = fs.readFileSync(path.join(p.root, '.loki/memory/changes'), 'utf8').split('\n').filter(Boolean);
    expect(feed.sort()).toEqual([...all].sort());
    expect(auditLines(p.root).filter((e) => e.action === 'memory.record')).toHaveLength(600);

    // A fresh server finds every one of them.
    const c = await connect(p);
    const r = structured<{ matched: number }>(await c.call('loki_memory_search', { query: 'zebracorn1 marker', tags: ['p1'], scope: 'project' }));
    expect(r.matched).toBe(300);
    const r2 = structured<{ matched: number }>(await c.call('loki_memory_search', { query: 'zebracorn2 marker', tags: ['p2'], scope: 'project' }));
    expect(r2.matched).toBe(300);
    await c.close();
  }, 180_000);

  it('a warm server finds an item another process recorded, without a restart', async () => {
    const p = tempProject();
    projects.push(p);
    const c = await connect(p);
    await c.call('loki_memory_record', { layer: 'episode', title: 'warm up the index', outcome: 'success' });
    const before = structured<{ matched: number }>(await c.call('loki_memory_search', { query: 'zebracorn7', scope: 'project' }));
    expect(before.matched).toBe(0);
    const child = recorder(p, 7, 3, false);
    const done = JSON.parse(await child.line(/^\{/, 60_000)) as Done;
    const after = structured<{ results: { id: string }[] }>(await c.call('loki_memory_search', { query: 'zebracorn7', scope: 'project', limit: 10 }));
    expect(after.results.map((x) => x.id).sort()).toEqual([...done.ids].sort());
    await c.close();
  }, 60_000);
});
