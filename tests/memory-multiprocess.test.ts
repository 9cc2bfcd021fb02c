/**
 * Memory across processes: two spawned processes recording at once lose nothing, a running server finds what
 * another process recorded without a restart, and a process killed in the middle of recording leaves each
 * item with its index entry and its audit entry, or nothing of it. Children run
 * tests/fixtures/memory-recorder.mjs against a private bundle of the current sources (see fixtures/bundle.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateBundle, privateBundle } from './fixtures/bundle.js';
import { type Child, spawnChild } from './fixtures/children.js';
import { auditLines, connect, dbRows, structured, tempProject, type TempProject } from './helpers.js';

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

function recorder(p: TempProject, id: number, count: number, barrier: boolean, fault = ''): Child {
  const args = [p.root, p.home, String(id), String(count), ...(barrier ? ['--barrier'] : [])];
  const c = spawnChild('memory-recorder.mjs', args, { LOKI_BUNDLE: bundle.file, LOKI_HOME: p.home, LOKI_FAULT: fault });
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
    const stored = dbRows<{ id: string }>(p.root, 'SELECT id FROM memory ORDER BY id').map((r) => r.id);
    expect(stored).toEqual([...all].sort());
    expect(dbRows(p.root, "SELECT count(*) AS n FROM memory_fts WHERE memory_fts MATCH 'marker'")).toEqual([
      { n: 600 },
    ]);
    expect(
      auditLines(p.root)
        .filter((e) => e.action === 'memory.record')
        .map((e) => e.target)
        .sort(),
    ).toEqual([...all].sort());

    // A fresh server finds every one of them.
    const c = await connect(p);
    const r = structured<{ matched: number }>(
      await c.call('loki_memory_search', { query: 'zebracorn1 marker', tags: ['p1'], scope: 'project' }),
    );
    expect(r.matched).toBe(300);
    const r2 = structured<{ matched: number }>(
      await c.call('loki_memory_search', { query: 'zebracorn2 marker', tags: ['p2'], scope: 'project' }),
    );
    expect(r2.matched).toBe(300);
    await c.close();
  }, 180_000);

  it('a warm server finds an item another process recorded, without a restart', async () => {
    const p = tempProject();
    projects.push(p);
    const c = await connect(p);
    await c.call('loki_memory_record', { layer: 'episode', title: 'warm up the index', outcome: 'success' });
    const before = structured<{ matched: number }>(
      await c.call('loki_memory_search', { query: 'zebracorn7', scope: 'project' }),
    );
    expect(before.matched).toBe(0);
    const child = recorder(p, 7, 3, false);
    const done = JSON.parse(await child.line(/^\{/, 60_000)) as Done;
    const after = structured<{ results: { id: string }[] }>(
      await c.call('loki_memory_search', { query: 'zebracorn7', scope: 'project', limit: 10 }),
    );
    expect(after.results.map((x) => x.id).sort()).toEqual([...done.ids].sort());
    await c.close();
  }, 60_000);

  it('a process killed while committing a record leaves the earlier records whole and nothing of that one', async () => {
    const p = tempProject();
    projects.push(p);
    // The database exists (and is migrated) first, so the child's only transactions are its records.
    const first = JSON.parse(await recorder(p, 8, 1, false).line(/^\{/, 60_000)) as Done;
    const child = recorder(p, 9, 5, false, 'tx-before-commit@3');
    expect((await child.exited).signal).toBe('SIGKILL');
    const titles = dbRows<{ title: string }>(p.root, "SELECT body ->> '$.title' AS title FROM memory ORDER BY rid").map(
      (r) => r.title,
    );
    expect(titles).toEqual(['child 8 episode 0', 'child 9 episode 0', 'child 9 episode 1']);
    expect(dbRows(p.root, "SELECT count(*) AS n FROM memory_fts WHERE memory_fts MATCH 'zebracorn9'")).toEqual([
      { n: 2 },
    ]);
    const audited = auditLines(p.root).filter((e) => e.action === 'memory.record');
    expect(audited.map((e) => (e.data as { title: string }).title)).toEqual(titles);
    expect(audited[0]!.target).toBe(first.ids[0]);
    expect(dbRows(p.root, 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
  }, 60_000);
});
