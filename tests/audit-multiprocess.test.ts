/**
 * The audit log across processes: concurrent appenders in separate node processes share one chain, and an
 * appender SIGKILLed at the fault points of a transaction (see store/fault.ts) leaves a log that the next
 * appender continues at once, with a chain that still verifies.
 *
 * Children run tests/fixtures/audit-appender.mjs against a private bundle of the current sources (see
 * fixtures/bundle.ts); the parent verifies with the TypeScript sources.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../mcp-server/src/audit/chain.js';
import { externalAnchorFile } from '../mcp-server/src/audit/anchor.js';
import { Store } from '../mcp-server/src/store/store.js';
import { type PrivateBundle, privateBundle } from './fixtures/bundle.js';
import { type Child, spawnChild } from './fixtures/children.js';

const tmpRoots: string[] = [];
function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpRoots.push(dir);
  return dir;
}

let bundle: PrivateBundle;
const living = new Set<Child>();

beforeAll(async () => {
  bundle = await privateBundle();
});
afterAll(() => {
  for (const c of living) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  bundle?.cleanup();
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

interface Project {
  projectRoot: string;
  homeRoot: string;
  /** A fresh in-process store (its own connection), as a newly started server would have; closed after use. */
  withFresh<T>(fn: (store: Store) => T, actor?: string): T;
  entries: () => AuditEntry[];
  anchorCount: () => number;
}

function newProject(): Project {
  const projectRoot = tmpDir('loki-auditmp-project-');
  const homeRoot = tmpDir('loki-auditmp-home-');
  const withFresh = <T>(fn: (store: Store) => T, actor = 'parent'): T => {
    const store = Store.open(projectRoot, homeRoot, actor);
    try {
      return fn(store);
    } finally {
      store.close();
    }
  };
  // Create the database here, as loki_start would have: a child that created it would count the migrations'
  // transactions towards its LOKI_FAULT=point@N, and which child gets there first is a race.
  withFresh(() => undefined);
  return {
    projectRoot,
    homeRoot,
    withFresh,
    entries: () => withFresh((s) => s.audit.entries(0, 1_000_000)),
    anchorCount: () => {
      const file = externalAnchorFile(homeRoot, fs.realpathSync(projectRoot));
      return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { count: number }).count : 0;
    },
  };
}

function appender(
  p: Project,
  id: number,
  count: number | 'until-stdin-ends',
  opts: { barrier?: boolean; fault?: string } = {},
): Child {
  const args = [p.projectRoot, p.homeRoot, String(id), String(count)];
  if (opts.barrier) args.push('--barrier');
  const c = spawnChild('audit-appender.mjs', args, { LOKI_BUNDLE: bundle.file, LOKI_FAULT: opts.fault ?? '' });
  living.add(c);
  return c;
}

async function startTogether(children: Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.line(/^ready$/)));
  for (const c of children) c.proc.stdin!.end('go\n');
}

/** Assert the log is one unforked chain in which every (process, i) pair of `expected` appears exactly once. */
function expectCleanChain(p: Project, expected: Map<number, number>, extra = 0): void {
  const total = [...expected.values()].reduce((a, b) => a + b, 0) + extra;
  const v = p.withFresh((s) => s.audit.verify());
  expect(v.firstBreak).toBeUndefined();
  expect(v).toMatchObject({ ok: true, count: total });
  expect(v.anchors.map((a) => a.status)).toEqual(['ok']);
  const entries = p.entries();
  expect(entries).toHaveLength(total);
  // No forks: every prev is used exactly once, and it is the hash of the entry before.
  expect(new Set(entries.map((e) => e.prev)).size).toBe(total);
  entries.forEach((e, i) => expect(e.prev === (i === 0 ? '0'.repeat(64) : entries[i - 1]!.hash)).toBe(true));
  // Every (process, i) pair once, in order within each process.
  const seen = new Set<string>();
  const lastI = new Map<number, number>();
  for (const e of entries) {
    if (e.action !== 'test.append') continue;
    const { p: proc, i } = e.data as { p: number; i: number };
    const key = `${proc}:${i}`;
    expect(seen.has(key), `duplicate ${key}`).toBe(false);
    seen.add(key);
    expect(i).toBe((lastI.get(proc) ?? -1) + 1);
    lastI.set(proc, i);
    expect(e.actor).toBe(`proc-${proc}`);
  }
  expect(seen.size).toBe(total - extra);
  for (const [proc, n] of expected) expect(lastI.get(proc) ?? -1, `entries of process ${proc}`).toBe(n - 1);
}

describe('audit log across processes', () => {
  it('8 processes x 200 concurrent appends: one valid chain of exactly 1,600 entries, no forks, every (process, i) once', async () => {
    const p = newProject();
    const children = Array.from({ length: 8 }, (_, id) => appender(p, id, 200, { barrier: true }));
    await startTogether(children);
    const t0 = Date.now();
    const exits = await Promise.all(children.map((c) => c.exited));
    const ms = Date.now() - t0;
    expect(exits, children.map((c) => c.stderr()).join('\n')).toEqual(children.map(() => ({ code: 0, signal: null })));
    expectCleanChain(p, new Map(children.map((_, id) => [id, 200])));
    // The appends really interleaved.
    const switches = p.entries().reduce((n, e, i, all) => n + (i > 0 && e.actor !== all[i - 1]!.actor ? 1 : 0), 0);
    expect(switches).toBeGreaterThanOrEqual(16);
    console.log(`audit: 1,600 appends from 8 processes in ${ms} ms (${switches} switches between writers)`);
  }, 90_000);

  it('an appender SIGKILLed before or after the write (several N): the next appender goes on at once and the chain verifies', async () => {
    const p = newProject();
    const expected = new Map<number, number>();
    let extra = 0;
    // Killed holding the write lock (after BEGIN IMMEDIATE), just before COMMIT, just after it, and between the
    // commit and the external anchor's update.
    const cases: { fault: string; written: number; anchorLags: boolean }[] = [
      { fault: 'tx-begun@1', written: 0, anchorLags: false },
      { fault: 'tx-begun@7', written: 6, anchorLags: false },
      { fault: 'tx-before-commit@1', written: 0, anchorLags: false },
      { fault: 'tx-before-commit@5', written: 4, anchorLags: false },
      { fault: 'tx-after-commit@1', written: 1, anchorLags: true },
      { fault: 'tx-after-commit@13', written: 13, anchorLags: true },
      { fault: 'audit-before-anchor@2', written: 2, anchorLags: true },
      { fault: 'audit-before-anchor@4', written: 4, anchorLags: true },
    ];
    const recoveries: string[] = [];
    let id = 0;
    for (const c of cases) {
      const child = appender(p, id, 20, { fault: c.fault });
      expect(await child.exited, `${c.fault}: ${child.stderr()}`).toEqual({ code: null, signal: 'SIGKILL' });
      if (c.written > 0) expected.set(id, c.written);
      id++;
      const entries = p.entries();
      // What was committed is there; the anchor may lag the last commit by one, never more, never ahead.
      expect(p.anchorCount()).toBe(c.anchorLags ? entries.length - 1 : entries.length);

      // A fresh appender in this process, as a restarted server would be.
      const t0 = Date.now();
      p.withFresh((s) =>
        s.mutate(
          () => undefined,
          () => ({ action: 'recovery', target: c.fault }),
        ),
      );
      const waited = Date.now() - t0;
      extra++;
      recoveries.push(`${c.fault}: ${waited} ms`);
      expect(waited, c.fault).toBeLessThan(3_000);
      expectCleanChain(p, expected, extra);
    }
    // And a fresh appender in another process.
    const last = appender(p, id, 10);
    expect(await last.exited).toEqual({ code: 0, signal: null });
    expected.set(id, 10);
    expectCleanChain(p, expected, extra);
    console.log(`audit: time for the next append after a SIGKILLed appender: ${recoveries.join('; ')}`);
  }, 60_000);

  it('an appender SIGKILLed while it makes the anchor file leaves no anchor without its record', async () => {
    const p = newProject();
    const file = externalAnchorFile(p.homeRoot, fs.realpathSync(p.projectRoot));
    // Its first commit makes the anchor: killed after writing the new file, before it takes the anchor's name.
    const child = appender(p, 0, 5, { fault: 'anchor-before-rename@1' });
    expect(await child.exited, child.stderr()).toEqual({ code: null, signal: 'SIGKILL' });
    expect(p.entries()).toHaveLength(1);
    expect(fs.existsSync(file)).toBe(false);
    // What it had made holds the whole record before it would have taken the name.
    const made = fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.tmp'));
    expect(made).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(path.dirname(file), made[0]!), 'utf8'))).toEqual({
      count: 1,
      head: p.entries()[0]!.hash,
    });
    // The next commit makes it, and the chain and the anchor agree.
    p.withFresh((s) =>
      s.mutate(
        () => undefined,
        () => ({ action: 'recovery' }),
      ),
    );
    expect(p.anchorCount()).toBe(2);
    expect(p.withFresh((s) => s.audit.verify())).toMatchObject({ ok: true, count: 2 });
  }, 30_000);

  it('an appender SIGKILLed mid-run while three others are appending: the others finish and the chain verifies', async () => {
    const p = newProject();
    // The three go on appending until the doomed one is dead (then 10 more each); it dies just after a commit,
    // so the others must carry on from its last entry.
    const normal = [0, 1, 2].map((id) => appender(p, id, 'until-stdin-ends', { barrier: true }));
    const doomed = appender(p, 3, 100, { barrier: true, fault: 'tx-after-commit@30' });
    await Promise.all([...normal, doomed].map((c) => c.line(/^ready$/)));
    for (const c of normal) c.proc.stdin!.write('go\n');
    doomed.proc.stdin!.end('go\n');
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    for (const c of normal) c.proc.stdin!.end();
    const exits = await Promise.all(normal.map((c) => c.exited));
    expect(exits, normal.map((c) => c.stderr()).join('\n')).toEqual(normal.map(() => ({ code: 0, signal: null })));
    const appended = await Promise.all(
      normal.map(async (c) => JSON.parse(await c.line(/^\{/)) as { id: number; appended: number }),
    );
    for (const a of appended) expect(a.appended).toBeGreaterThanOrEqual(10);
    expectCleanChain(p, new Map([...appended.map((a): [number, number] => [a.id, a.appended]), [3, 30]]));
  }, 60_000);
});
