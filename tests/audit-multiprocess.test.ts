/**
 * The audit log across processes: concurrent appenders in separate node processes share one chain, and an
 * appender SIGKILLed at the fault points around the append (see store/fault.ts) leaves a log that the next
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
import { AUDIT_LOG, AuditLog, externalAnchorName } from '../mcp-server/src/audit/log.js';
import { ticketPid } from '../mcp-server/src/store/lock-ticket.js';
import { LockManager } from '../mcp-server/src/store/lock.js';
import { SafeDir } from '../mcp-server/src/store/paths.js';
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
  loki: SafeDir;
  lockDir: string;
  /** A fresh in-process AuditLog (own LockManager and cache), as a newly started server would have. */
  fresh: (actor?: string) => AuditLog;
  entries: () => AuditEntry[];
}

function newProject(): Project {
  const projectRoot = tmpDir('loki-auditmp-project-');
  const homeRoot = tmpDir('loki-auditmp-home-');
  const project = SafeDir.open(projectRoot);
  const loki = project.child('.loki', true);
  const locks = loki.child('locks', true);
  const home = SafeDir.open(homeRoot);
  return {
    projectRoot,
    homeRoot,
    loki,
    lockDir: locks.root,
    fresh: (actor = 'parent') => new AuditLog(loki, new LockManager(locks), { dir: home, rel: externalAnchorName(project.root), label: 'the external anchor' }, actor),
    entries: () => {
      const text = fs.readFileSync(path.join(loki.root, AUDIT_LOG), 'utf8');
      return text === '' ? [] : text.trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);
    },
  };
}

function appender(p: Project, id: number, count: number | 'until-stdin-ends', opts: { barrier?: boolean; fault?: string } = {}): Child {
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
  const v = p.fresh().verify();
  expect(v.firstBreak).toBeUndefined();
  expect(v).toMatchObject({ ok: true, count: total, tornTail: false, restarts: [] });
  expect(v.anchors.map((a) => a.status)).toEqual(['ok', 'ok']);
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
  // No lock is left held, and no ticket of a process that is gone (only this test process's own tickets).
  expect(fs.readdirSync(p.lockDir).filter((n) => !(n.endsWith('.ticket') && ticketPid(n) === process.pid))).toEqual([]);
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
    const cases: { fault: string; written: number }[] = [
      { fault: 'audit-before-append@1', written: 0 },
      { fault: 'audit-before-append@7', written: 6 },
      { fault: 'audit-after-append@1', written: 1 },
      { fault: 'audit-after-append@13', written: 13 },
      { fault: 'audit-before-append@2', written: 1 },
      { fault: 'audit-after-append@4', written: 4 },
      // The lock itself: killed right after acquiring it, and with its ticket written but not yet linked.
      { fault: 'lock-acquired@3', written: 2 },
      { fault: 'lock-ticket-written@5', written: 4 },
    ];
    const recoveries: string[] = [];
    let id = 0;
    for (const c of cases) {
      const child = appender(p, id, 20, { fault: c.fault });
      expect(await child.exited, `${c.fault}: ${child.stderr()}`).toEqual({ code: null, signal: 'SIGKILL' });
      if (c.written > 0) expected.set(id, c.written);
      id++;
      const entries = p.entries();
      const anchorFile = path.join(p.loki.root, 'audit/anchor.json');
      const anchorCount = fs.existsSync(anchorFile) ? (JSON.parse(fs.readFileSync(anchorFile, 'utf8')) as { count: number }).count : 0;
      if (c.fault.startsWith('audit-after-append')) expect(anchorCount).toBe(entries.length - 1); // the anchor lags by one
      else expect(anchorCount).toBe(entries.length);
      // Died holding the lock, or (ticket written, not linked) just before taking it.
      if (c.fault.startsWith('lock-ticket-written')) expect(fs.readdirSync(p.lockDir)).not.toContain('audit.lock');
      else expect(fs.readdirSync(p.lockDir)).toContain('audit.lock');

      // A fresh appender in this process, as a restarted server would be.
      const t0 = Date.now();
      await p.fresh().append('recovery', c.fault);
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

  it('an appender SIGKILLed mid-run while three others are appending: the others finish and the chain verifies', async () => {
    const p = newProject();
    // The three go on appending until the doomed one is dead (then 10 more each), so one of them must take
    // over the lock it died holding, however the turns fell.
    const normal = [0, 1, 2].map((id) => appender(p, id, 'until-stdin-ends', { barrier: true }));
    const doomed = appender(p, 3, 100, { barrier: true, fault: 'audit-after-append@30' });
    await Promise.all([...normal, doomed].map((c) => c.line(/^ready$/)));
    for (const c of normal) c.proc.stdin!.write('go\n');
    doomed.proc.stdin!.end('go\n');
    expect(await doomed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    for (const c of normal) c.proc.stdin!.end();
    const exits = await Promise.all(normal.map((c) => c.exited));
    expect(exits, normal.map((c) => c.stderr()).join('\n')).toEqual(normal.map(() => ({ code: 0, signal: null })));
    const appended = await Promise.all(normal.map(async (c) => (JSON.parse(await c.line(/^\{/)) as { id: number; appended: number })));
    for (const a of appended) expect(a.appended).toBeGreaterThanOrEqual(10);
    expectCleanChain(p, new Map([...appended.map((a): [number, number] => [a.id, a.appended]), [3, 30]]));
  }, 60_000);
});
