/**
 * The audit chain: pure tests of chain.ts and file tests of AuditLog (log.ts).
 *
 * A 1,000-entry log is built once through real `append` calls (and once more with makeEntry for the pure tests);
 * every tampering below is applied to a fresh copy of it, with both anchors copied alongside, and must make
 * verification fail at the first bad entry. Tamperings that leave a self-consistent chain (forged insertion with
 * every downstream hash recomputed, full rewrite, truncation) can only be caught by the anchors, and the tests
 * check both that the bare chain accepts them and that `AuditLog.verify()` does not.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Anchor,
  type AuditEntry,
  type AuditFields,
  GENESIS,
  canonicalJson,
  checkAnchor,
  entryHash,
  makeEntry,
  serializeEntry,
  verifyChainText,
} from '../mcp-server/src/audit/chain.js';
import { AUDIT_LOG, AuditLog, LOCAL_ANCHOR, externalAnchorName } from '../mcp-server/src/audit/log.js';
import { LockManager } from '../mcp-server/src/store/lock.js';
import { SafeDir } from '../mcp-server/src/store/paths.js';

const N = 1000;

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

const tmpRoots: string[] = [];
function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpRoots.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

interface Fixture {
  project: SafeDir;
  loki: SafeDir;
  home: SafeDir;
  locks: LockManager;
  log: AuditLog;
  logPath: string;
  localAnchorPath: string;
  externalAnchorPath: string;
}

function openFixture(projectRoot = tmpDir('loki-audit-project-'), homeRoot = tmpDir('loki-audit-home-'), locks?: LockManager): Fixture {
  const project = SafeDir.open(projectRoot);
  const loki = project.child('.loki', true);
  const lockManager = locks ?? new LockManager(loki.child('locks', true));
  const home = SafeDir.open(homeRoot);
  const rel = externalAnchorName(project.root);
  const log = new AuditLog(loki, lockManager, { dir: home, rel, label: 'the external anchor' }, 'test');
  return {
    project,
    loki,
    home,
    locks: lockManager,
    log,
    logPath: path.join(loki.root, AUDIT_LOG),
    localAnchorPath: path.join(loki.root, LOCAL_ANCHOR),
    externalAnchorPath: path.join(home.root, rel),
  };
}

/** A second AuditLog (own LockManager, own cache) over the same project and home. */
function secondInstance(f: Fixture): AuditLog {
  const locks = new LockManager(f.loki.child('locks', true));
  return new AuditLog(f.loki, locks, { dir: f.home, rel: externalAnchorName(f.project.root), label: 'the external anchor' }, 'second');
}

function dataFor(i: number): unknown {
  return { i, note: `café ${i}`, n: 1, tags: ['a', 'b'], nested: { z: i % 7, a: 'x' } };
}

function toLines(text: string): string[] {
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}
function fromLines(lines: string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function fieldsOf(line: string): AuditFields {
  const { seq: _seq, prev: _prev, hash: _hash, ...fields } = JSON.parse(line) as AuditEntry;
  return fields;
}

/** Lines of a valid chain over the given fields, starting from `genesis`. */
function rechain(fields: AuditFields[], genesis = GENESIS): string[] {
  let prev = genesis;
  return fields.map((f, i) => {
    const e = makeEntry(prev, i, f);
    prev = e.hash;
    return serializeEntry(e).slice(0, -1);
  });
}

/** Flip the low bit of the character at `pos` (the strings here are ASCII at the flipped positions). */
function flipAt(line: string, pos: number, mask = 1): string {
  expect(pos).toBeGreaterThanOrEqual(0);
  expect(pos).toBeLessThan(line.length);
  const flipped = String.fromCharCode(line.charCodeAt(pos) ^ mask);
  expect(flipped).not.toBe('\n');
  return line.slice(0, pos) + flipped + line.slice(pos + 1);
}

/** Offset of the first character of the value of `"key":` (inside the quotes for a string value). */
function valueAt(line: string, key: string): number {
  const needle = `"${key}":`;
  const at = line.indexOf(needle);
  expect(at, `key ${key} in ${line}`).toBeGreaterThanOrEqual(0);
  const p = at + needle.length;
  return line[p] === '"' ? p + 1 : p;
}

function setLine(lines: string[], i: number, f: (line: string) => string): string[] {
  const out = lines.slice();
  out[i] = f(out[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The tampering table, applied both to the pure chain and to log files

interface Tamper {
  name: string;
  mutate: (lines: string[]) => string[];
  /** Expected firstBreak.index. */
  index: number;
  /** False when the chain alone stays self-consistent and only the anchors can see the damage. */
  chainDetects: boolean;
  reason?: RegExp;
}

const ENTRY_POSITIONS = [0, 1, 500, 998, N - 1];

function tamperings(): Tamper[] {
  const t: Tamper[] = [];
  // Byte flips in every field, at several entries and several positions.
  for (const k of ENTRY_POSITIONS) {
    const flip = (name: string, pos: (line: string) => number, mask = 1) =>
      t.push({ name: `entry ${k}: ${name}`, mutate: (ls) => setLine(ls, k, (l) => flipAt(l, pos(l), mask)), index: k, chainDetects: true });
    flip('payload data.note first char', (l) => valueAt(l, 'note'));
    flip('payload data.i digit', (l) => valueAt(l, 'i'));
    flip('payload data.n (1 -> 0)', (l) => valueAt(l, 'n'));
    flip('payload nested key name', (l) => l.indexOf('"z":') + 1);
    flip('payload action', (l) => valueAt(l, 'action') + 2);
    flip('payload actor', (l) => valueAt(l, 'actor'));
    flip('payload target last char', (l) => valueAt(l, 'target') + `task-${k}`.length - 1);
    flip('payload ts digit', (l) => valueAt(l, 'ts') + 3);
    flip('payload ts seconds', (l) => valueAt(l, 'ts') + 18);
    for (const p of [0, 1, 31, 62, 63]) flip(`prev hex char ${p}`, (l) => valueAt(l, 'prev') + p);
    flip('prev hex char 10, bit 2', (l) => valueAt(l, 'prev') + 10, 4);
    for (const p of [0, 1, 31, 62, 63]) flip(`hash hex char ${p}`, (l) => valueAt(l, 'hash') + p);
    flip('hash hex char 40, bit 2', (l) => valueAt(l, 'hash') + 40, 4);
    flip('seq first digit', (l) => valueAt(l, 'seq'));
    flip('seq last digit', (l) => l.indexOf(',', valueAt(l, 'seq')) - 1);
    flip('seq key name', (l) => l.indexOf('"seq"') + 1);
    flip('seq digit, bit 4 (digit -> control char)', (l) => valueAt(l, 'seq'), 16);
    flip('opening brace', () => 0);
    flip('closing brace', (l) => l.length - 1);
    flip('a structural quote', (l) => l.indexOf('"prev"'));
  }

  // Edit one field and recompute that entry's own hash: only the next entry's prev (or, for the last entry,
  // the anchors' head) can tell.
  for (const k of [0, 500, N - 1]) {
    t.push({
      name: `entry ${k}: edited and its own hash recomputed`,
      mutate: (ls) =>
        setLine(ls, k, (l) => {
          const e = JSON.parse(l) as AuditEntry;
          const fields = { ...fieldsOf(l), data: { ...(e.data as object), note: 'approved by nobody' } };
          return serializeEntry(makeEntry(e.prev, e.seq, fields)).slice(0, -1);
        }),
      index: k === N - 1 ? N - 1 : k + 1,
      chainDetects: k !== N - 1,
      reason: k === N - 1 ? /rewritten/ : /prev does not match/,
    });
  }
  t.push({
    name: 'entry 500: an extra, unhashed field added',
    mutate: (ls) => setLine(ls, 500, (l) => canonicalJson({ ...(JSON.parse(l) as AuditEntry), approved: true })),
    index: 500,
    chainDetects: true,
  });
  t.push({
    name: 'entry 500: an optional field (target) removed',
    mutate: (ls) =>
      setLine(ls, 500, (l) => {
        const e = JSON.parse(l) as AuditEntry;
        delete e.target;
        return serializeEntry(e).slice(0, -1);
      }),
    index: 500,
    chainDetects: true,
  });

  // Deletions.
  t.push({ name: 'first entry deleted', mutate: (ls) => ls.slice(1), index: 0, chainDetects: true });
  t.push({ name: 'middle entry deleted', mutate: (ls) => [...ls.slice(0, 500), ...ls.slice(501)], index: 500, chainDetects: true });
  t.push({ name: 'last entry deleted', mutate: (ls) => ls.slice(0, -1), index: N - 1, chainDetects: false, reason: /truncated or removed/ });

  // Reordering.
  const swap = (ls: string[], a: number, b: number) => {
    const out = ls.slice();
    [out[a], out[b]] = [out[b]!, out[a]!];
    return out;
  };
  t.push({ name: 'adjacent entries swapped (500, 501)', mutate: (ls) => swap(ls, 500, 501), index: 500, chainDetects: true });
  t.push({ name: 'first two entries swapped', mutate: (ls) => swap(ls, 0, 1), index: 0, chainDetects: true });
  t.push({ name: 'last two entries swapped', mutate: (ls) => swap(ls, N - 2, N - 1), index: N - 2, chainDetects: true });
  t.push({ name: 'distant entries swapped (100, 800)', mutate: (ls) => swap(ls, 100, 800), index: 100, chainDetects: true });

  // Duplication / replay.
  t.push({ name: 'entry 500 duplicated in place', mutate: (ls) => [...ls.slice(0, 501), ls[500]!, ...ls.slice(501)], index: 501, chainDetects: true });
  t.push({ name: 'first entry duplicated', mutate: (ls) => [ls[0]!, ...ls], index: 1, chainDetects: true });
  t.push({ name: 'entry 10 replayed at the end', mutate: (ls) => [...ls, ls[10]!], index: N, chainDetects: true });
  t.push({ name: 'last entry replayed at the end', mutate: (ls) => [...ls, ls[N - 1]!], index: N, chainDetects: true });
  t.push({ name: 'entry 900 replayed over entry 100', mutate: (ls) => setLine(ls, 100, () => ls[900]!), index: 100, chainDetects: true });

  // Self-consistent forgeries: only the anchors can catch these.
  const forged: AuditFields = { ts: '2020-01-01T00:00:00.000Z', actor: 'test', action: 'gate.override', target: 'gate', data: { approved: true } };
  t.push({
    name: 'forged entry inserted at 500, every downstream hash recomputed',
    mutate: (ls) => rechain([...ls.slice(0, 500).map(fieldsOf), forged, ...ls.slice(500).map(fieldsOf)]),
    index: N - 1,
    chainDetects: false,
    reason: /rewritten/,
  });
  t.push({
    name: 'forged entry inserted at 0, every downstream hash recomputed',
    mutate: (ls) => rechain([forged, ...ls.map(fieldsOf)]),
    index: N - 1,
    chainDetects: false,
    reason: /rewritten/,
  });
  t.push({
    name: 'entry 500 deleted, every downstream hash recomputed',
    mutate: (ls) => rechain([...ls.slice(0, 500), ...ls.slice(501)].map(fieldsOf)),
    index: N - 1,
    chainDetects: false,
    reason: /truncated or removed/,
  });
  t.push({
    name: 'full rewrite with freshly recomputed hashes',
    mutate: (ls) => rechain(ls.map((l) => ({ ...fieldsOf(l), actor: 'mallory' }))),
    index: N - 1,
    chainDetects: false,
    reason: /rewritten/,
  });
  t.push({
    name: 'full rewrite, same content, one byte of one ts changed',
    mutate: (ls) => rechain(ls.map((l, i) => (i === 3 ? { ...fieldsOf(l), ts: '1999-01-01T00:00:00.000Z' } : fieldsOf(l)))),
    index: N - 1,
    chainDetects: false,
    reason: /rewritten/,
  });
  t.push({ name: 'last 100 entries truncated', mutate: (ls) => ls.slice(0, N - 100), index: N - 100, chainDetects: false, reason: /truncated/ });
  t.push({ name: 'truncated to empty', mutate: () => [], index: 0, chainDetects: false, reason: /truncated/ });
  t.push({ name: 'truncated to one entry', mutate: (ls) => ls.slice(0, 1), index: 1, chainDetects: false, reason: /truncated/ });

  // Forks: two entries sharing one prev.
  const sibling = (ls: string[], k: number, seq: number) => {
    const e = JSON.parse(ls[k]!) as AuditEntry;
    return serializeEntry(makeEntry(e.prev, seq, { ...fieldsOf(ls[k]!), action: 'fork.sibling' })).slice(0, -1);
  };
  t.push({ name: 'fork: sibling of entry 500 (same prev, same seq) inserted after it', mutate: (ls) => [...ls.slice(0, 501), sibling(ls, 500, 500), ...ls.slice(501)], index: 501, chainDetects: true });
  t.push({ name: 'fork: entry 501 replaced by a sibling of 500 carrying seq 501', mutate: (ls) => setLine(ls, 501, () => sibling(ls, 500, 501)), index: 501, chainDetects: true, reason: /prev does not match/ });
  t.push({ name: 'fork: entry 500 replaced by a sibling (same prev), rest kept', mutate: (ls) => setLine(ls, 500, () => sibling(ls, 500, 500)), index: 501, chainDetects: true, reason: /prev does not match/ });
  t.push({
    name: 'fork: two branches from entry 499 interleaved',
    mutate: (ls) => {
      const branch = rechain([...ls.slice(0, 500).map(fieldsOf), ...ls.slice(500).map((l) => ({ ...fieldsOf(l), actor: 'branch' }))]);
      return [...ls.slice(0, 501), branch[500]!, ...ls.slice(501)];
    },
    index: 501,
    chainDetects: true,
  });

  // Canonicalisation traps: the hash still matches (same parsed value), but the text is not what was written.
  for (const k of [0, 500, N - 1]) {
    const trap = (name: string, f: (l: string) => string) =>
      t.push({ name: `entry ${k}: ${name}`, mutate: (ls) => setLine(ls, k, f), index: k, chainDetects: true, reason: /canonical/ });
    trap('keys reordered', (l) => {
      const e = JSON.parse(l) as Record<string, unknown>;
      return JSON.stringify(Object.fromEntries(Object.entries(e).reverse()));
    });
    trap('nested data keys reordered', (l) => l.replace(/"nested":\{"a":"x","z":(\d+)\}/, '"nested":{"z":$1,"a":"x"}'));
    trap('1 written as 1.0', (l) => l.replace('"n":1,', '"n":1.0,'));
    trap('1 written as 1e0', (l) => l.replace('"n":1,', '"n":1e0,'));
    trap('é written as \\u00e9', (l) => l.replace('é', '\\u00e9'));
    trap('a written as \\u0061', (l) => l.replace('"note":"caf', '"note":"c\\u0061f'));
    trap('space after a colon', (l) => l.replace('"seq":', '"seq": '));
    trap('space after a comma', (l) => l.replace(',"ts":', ', "ts":'));
    trap('trailing space', (l) => `${l} `);
    trap('leading tab', (l) => `\t${l}`);
    trap('CRLF line ending', (l) => `${l}\r`);
    trap('array element escaped as \\u0061', (l) => l.replace('"tags":["a"', '"tags":["\\u0061"'));
  }
  t.push({ name: 'blank line inserted before entry 500', mutate: (ls) => [...ls.slice(0, 500), '', ...ls.slice(500)], index: 500, chainDetects: true, reason: /JSON/ });
  t.push({ name: 'blank line at the start', mutate: (ls) => ['', ...ls], index: 0, chainDetects: true });

  // Wrong genesis.
  t.push({ name: 'chain rebuilt on a wrong genesis (f...f)', mutate: (ls) => rechain(ls.map(fieldsOf), 'f'.repeat(64)), index: 0, chainDetects: true, reason: /prev/ });
  t.push({ name: 'chain rebuilt on a wrong genesis (0...01)', mutate: (ls) => rechain(ls.map(fieldsOf), `${'0'.repeat(63)}1`), index: 0, chainDetects: true, reason: /prev/ });
  t.push({
    name: 'first entry claims a non-genesis prev',
    mutate: (ls) => setLine(ls, 0, (l) => serializeEntry(makeEntry('a'.repeat(64), 0, fieldsOf(l))).slice(0, -1)),
    index: 0,
    chainDetects: true,
  });

  // Uppercase hex.
  for (const k of [0, 500, N - 1]) {
    t.push({ name: `entry ${k}: hash in uppercase hex`, mutate: (ls) => setLine(ls, k, (l) => l.replace(/"hash":"([0-9a-f]{64})"/, (_m, h: string) => `"hash":"${h.toUpperCase()}"`)), index: k, chainDetects: true, reason: /malformed hash/ });
    // (Entry 0's prev is the all-zero genesis, which has no letters to uppercase: use entry 1 instead.)
    const kp = k === 0 ? 1 : k;
    t.push({ name: `entry ${kp}: prev in uppercase hex`, mutate: (ls) => setLine(ls, kp, (l) => l.replace(/"prev":"([0-9a-f]{64})"/, (_m, h: string) => `"prev":"${h.toUpperCase()}"`)), index: kp, chainDetects: true, reason: /malformed prev/ });
  }
  return t;
}

const TAMPERINGS = tamperings();

// ---------------------------------------------------------------------------------------------------------------
// Pure chain tests

describe('chain.ts (pure)', () => {
  let lines: string[];
  let anchor: Anchor;

  beforeAll(() => {
    const fields = Array.from({ length: N }, (_, i) => ({
      ts: new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString(),
      actor: 'test',
      action: 'task.update',
      target: `task-${i}`,
      data: dataFor(i),
    }));
    lines = rechain(fields);
    const last = JSON.parse(lines[N - 1]!) as AuditEntry;
    anchor = { count: N, head: last.hash };
  });

  /** Chain check plus the anchor check, as AuditLog.verify combines them. */
  function judge(text: string): { ok: boolean; index?: number; reason?: string; chainOk: boolean } {
    const hashes: string[] = [];
    const report = verifyChainText(text, (e) => hashes.push(e.hash));
    if (!report.ok) return { ok: false, index: report.firstBreak!.index, reason: report.firstBreak!.reason, chainOk: false };
    const mismatch = checkAnchor(report, anchor, (i) => hashes[i], 'the anchor');
    return mismatch ? { ok: false, index: mismatch.index, reason: mismatch.reason, chainOk: true } : { ok: true, chainOk: true };
  }

  it('a 1,000-entry chain built with makeEntry verifies, with the anchor', () => {
    const report = verifyChainText(fromLines(lines));
    expect(report).toEqual({ ok: true, count: N, head: anchor.head, tornTail: false });
    expect(judge(fromLines(lines)).ok).toBe(true);
    expect(JSON.parse(lines[0]!).prev).toBe(GENESIS);
  });

  it('canonicalJson sorts keys at every depth, drops undefined, keeps null and refuses non-finite numbers', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: undefined }, e: null })).toBe('{"a":{"d":[3,{"x":2,"y":1}]},"b":1,"e":null}');
    expect(canonicalJson({ n: 1.0, s: 'é\u2028"' })).toBe('{"n":1,"s":"é\u2028\\""}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    // The hash does not depend on key order or on spelling of the same value.
    const f = { ts: 't', actor: 'a', action: 'x', data: { b: 1, a: 2 } };
    expect(entryHash(GENESIS, 0, f)).toBe(entryHash(GENESIS, 0, { data: { a: 2, b: 1.0 }, action: 'x', actor: 'a', ts: 't' }));
    expect(entryHash(GENESIS, 0, f)).not.toBe(entryHash(GENESIS, 1, f));
    expect(entryHash(GENESIS, 0, f)).not.toBe(entryHash('1'.repeat(64), 0, f));
  });

  it('an empty text is an empty, valid chain; the anchor calls it truncated', () => {
    expect(verifyChainText('')).toEqual({ ok: true, count: 0, head: GENESIS, tornTail: false });
    expect(judge('')).toMatchObject({ ok: false, index: 0 });
  });

  it('a torn final line (no trailing newline) is tolerated and not counted', () => {
    const torn = `${fromLines(lines)}${lines[0]!.slice(0, 40)}`;
    const report = verifyChainText(torn);
    expect(report).toMatchObject({ ok: true, count: N, head: anchor.head, tornTail: true });
    // A whole last entry without its newline is also a torn line: it is not counted, and the anchor sees it missing.
    const noNewline = fromLines(lines).slice(0, -1);
    expect(verifyChainText(noNewline)).toMatchObject({ ok: true, count: N - 1, tornTail: true });
    expect(judge(noNewline)).toMatchObject({ ok: false, index: N - 1 });
  });

  it.each(TAMPERINGS.map((t) => [t.name, t] as const))('detects: %s', (_name, t) => {
    const text = fromLines(t.mutate(lines));
    expect(text).not.toBe(fromLines(lines));
    const chain = verifyChainText(text);
    expect(chain.ok, `chain alone ${chain.ok ? 'accepted' : 'rejected'} it: ${chain.firstBreak?.reason ?? ''}`).toBe(!t.chainDetects);
    if (t.chainDetects) expect(chain.firstBreak!.index).toBe(t.index);
    const verdict = judge(text);
    expect(verdict.ok).toBe(false);
    expect(verdict.index).toBe(t.index);
    if (t.reason) expect(verdict.reason).toMatch(t.reason);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// File tests: AuditLog

describe('AuditLog (files)', () => {
  let pristine: { log: string; local: Buffer; external: Buffer };

  beforeAll(async () => {
    const f = openFixture();
    for (let i = 0; i < N; i++) {
      const e = await f.log.append('task.update', `task-${i}`, dataFor(i));
      expect(e.seq).toBe(i);
    }
    pristine = { log: fs.readFileSync(f.logPath, 'utf8'), local: fs.readFileSync(f.localAnchorPath), external: fs.readFileSync(f.externalAnchorPath) };
    expect(fs.existsSync(path.join(f.loki.root, 'locks', 'audit.lock'))).toBe(false);
  }, 60_000);

  /** A fresh project holding a copy of the pristine log (or the given text) and both anchors. */
  function copyFixture(text = pristine.log, anchors: { local?: boolean; external?: boolean } = {}): Fixture {
    const f = openFixture();
    fs.mkdirSync(path.dirname(f.logPath), { recursive: true });
    fs.writeFileSync(f.logPath, text);
    if (anchors.local !== false) fs.writeFileSync(f.localAnchorPath, pristine.local);
    if (anchors.external !== false) {
      fs.mkdirSync(path.dirname(f.externalAnchorPath), { recursive: true });
      fs.writeFileSync(f.externalAnchorPath, pristine.external);
    }
    return f;
  }

  function readAnchor(file: string): Anchor {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Anchor;
  }

  it('1,000 real appends verify, and both anchors record {count, head}', () => {
    const f = copyFixture();
    const v = f.log.verify();
    expect(v).toMatchObject({ ok: true, count: N, tornTail: false, restarts: [] });
    expect(v.firstBreak).toBeUndefined();
    expect(v.anchors.map((a) => [a.count, a.status])).toEqual([
      [N, 'ok'],
      [N, 'ok'],
    ]);
    expect(readAnchor(f.localAnchorPath)).toEqual({ count: N, head: v.head });
    expect(readAnchor(f.externalAnchorPath)).toEqual({ count: N, head: v.head });
    // Each anchor file is one fixed-size record.
    expect(pristine.local.length).toBe(256);
    const lines = toLines(pristine.log);
    expect(lines).toHaveLength(N);
    for (const l of lines) expect(`${l}\n`).toBe(serializeEntry(JSON.parse(l) as AuditEntry));
  });

  it.each(TAMPERINGS.map((t) => [t.name, t] as const))('verify() fails at the first bad entry: %s', (_name, t) => {
    const f = copyFixture(fromLines(t.mutate(toLines(pristine.log))));
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.index).toBe(t.index);
    if (t.reason) expect(v.firstBreak?.reason).toMatch(t.reason);
  });

  it('a flipped byte inside a multi-byte character (invalid UTF-8) is detected', () => {
    const buf = Buffer.from(pristine.log, 'utf8');
    const lines = toLines(pristine.log);
    const lineStart = Buffer.byteLength(fromLines(lines.slice(0, 700)), 'utf8');
    const e = buf.indexOf(Buffer.from('é', 'utf8'), lineStart);
    buf[e + 1] = buf[e + 1]! ^ 0x80; // 0xC3 0xA9 -> 0xC3 0x29: invalid UTF-8
    const f = copyFixture();
    fs.writeFileSync(f.logPath, buf);
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.index).toBe(700);
  });

  it('a torn final line is tolerated by verify and cut by the next append', async () => {
    const f = copyFixture(`${pristine.log}{"action":"task.update","actor":"test","data":{"i":10`);
    const v = f.log.verify();
    expect(v).toMatchObject({ ok: true, count: N, tornTail: true });
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '');
    process.on('warning', onWarning);
    try {
      const e = await f.log.append('after.torn', undefined, { x: 1 });
      expect(e.seq).toBe(N);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toContain('LOKI_AUDIT_TORN');
    const text = fs.readFileSync(f.logPath, 'utf8');
    expect(text.startsWith(pristine.log)).toBe(true);
    expect(toLines(text)).toHaveLength(N + 1);
    const after = f.log.verify();
    expect(after).toMatchObject({ ok: true, count: N + 1, tornTail: false, restarts: [] });
    expect(after.anchors.every((a) => a.status === 'ok' && a.count === N + 1)).toBe(true);
  });

  it('a torn line written behind a cached tail is still cut (the cache is checked against the file size)', async () => {
    const f = copyFixture();
    const a = f.log;
    await a.append('warm.cache'); // a now caches the tail
    fs.appendFileSync(f.logPath, '{"seq":');
    const e = await a.append('after.torn');
    expect(e.seq).toBe(N + 1);
    expect(f.log.verify()).toMatchObject({ ok: true, count: N + 2, tornTail: false });
  });

  it('deleting the local anchor alone still leaves the external one detecting a truncation', () => {
    const f = copyFixture(fromLines(toLines(pristine.log).slice(0, N - 100)), { local: false });
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.index).toBe(N - 100);
    expect(v.firstBreak?.reason).toMatch(/external anchor/);
    expect(v.anchors.map((a) => a.status)).toEqual(['missing', 'mismatch']);
  });

  it('deleting the external anchor alone still leaves the local one detecting a truncation', () => {
    const f = copyFixture(fromLines(toLines(pristine.log).slice(0, N - 100)), { external: false });
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.index).toBe(N - 100);
    expect(v.firstBreak?.reason).toMatch(/local anchor/);
    expect(v.anchors.map((a) => a.status)).toEqual(['mismatch', 'missing']);
  });

  it('either anchor alone detects a full rewrite', () => {
    const rewritten = fromLines(rechain(toLines(pristine.log).map((l) => ({ ...fieldsOf(l), actor: 'mallory' }))));
    for (const keep of ['local', 'external'] as const) {
      const f = copyFixture(rewritten, { local: keep === 'local', external: keep === 'external' });
      const v = f.log.verify();
      expect(v.ok).toBe(false);
      expect(v.firstBreak).toMatchObject({ index: N - 1 });
      expect(v.firstBreak?.reason).toMatch(/rewritten/);
    }
  });

  it('with both anchors gone, a truncation cannot be seen; verify reports both anchors missing', () => {
    // Documents the limit of the design: the anchors are what make truncation visible.
    const f = copyFixture(fromLines(toLines(pristine.log).slice(0, N - 100)), { local: false, external: false });
    const v = f.log.verify();
    expect(v.ok).toBe(true);
    expect(v.anchors.map((a) => a.status)).toEqual(['missing', 'missing']);
  });

  it('an unreadable anchor is a break', () => {
    const f = copyFixture();
    fs.writeFileSync(f.externalAnchorPath, 'garbage');
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.reason).toMatch(/unreadable/);
    expect(v.anchors.map((a) => a.status)).toEqual(['ok', 'unreadable']);
  });

  it('an anchor that lags the log (crash between the append and the anchor write) is fine', () => {
    const lines = toLines(pristine.log);
    const f = copyFixture();
    const lag: Anchor = { count: N - 1, head: (JSON.parse(lines[N - 2]!) as AuditEntry).hash };
    fs.writeFileSync(f.localAnchorPath, canonicalJson(lag).padEnd(255, ' ') + '\n');
    const v = f.log.verify();
    expect(v.ok).toBe(true);
    expect(v.anchors.map((a) => [a.count, a.status])).toEqual([
      [N - 1, 'ok'],
      [N, 'ok'],
    ]);
  });

  it('a log removed entirely while the anchors remain: the next append restarts the chain, archives the damaged log and verify names the restart', async () => {
    const f = copyFixture();
    fs.unlinkSync(f.logPath);
    expect(f.log.verify()).toMatchObject({ ok: false, count: 0, firstBreak: { index: 0 } });
    const e = await f.log.append('after.removal', 'x', { y: 1 });
    expect(e.seq).toBe(1);
    const lines = toLines(fs.readFileSync(f.logPath, 'utf8'));
    expect(lines).toHaveLength(2);
    const restart = JSON.parse(lines[0]!) as AuditEntry;
    expect(restart).toMatchObject({ seq: 0, prev: GENESIS, action: 'audit.restart' });
    const data = restart.data as { reason: string; archived: string | null };
    expect(data.reason).toMatch(/damaged, truncated or removed/);
    expect(data.reason).toContain(String(N));
    expect(data.archived).toMatch(/^quarantine\/audit-.*\.jsonl$/);
    expect(fs.existsSync(path.join(f.loki.root, data.archived!))).toBe(true);
    expect(fs.readdirSync(path.join(f.loki.root, 'quarantine'))).toHaveLength(1);

    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.count).toBe(2);
    expect(v.restarts).toHaveLength(1);
    expect(v.restarts[0]!.index).toBe(0);
    expect(v.firstBreak?.index).toBe(0);
    expect(v.firstBreak?.reason).toMatch(/restarted/);
    expect(v.firstBreak?.reason).toContain(data.archived!);
    expect(v.anchors.every((a) => a.status === 'ok' && a.count === 2)).toBe(true);

    // The new chain goes on normally, and the restart stays visible.
    await f.log.append('later');
    const later = f.log.verify();
    expect(later).toMatchObject({ ok: false, count: 3 });
    expect(later.restarts).toHaveLength(1);
  });

  it('a log shorter than its anchors is archived with its content and the chain restarts', async () => {
    const truncated = fromLines(toLines(pristine.log).slice(0, N - 100));
    const f = copyFixture(truncated);
    await f.log.append('after.truncation');
    const restart = JSON.parse(toLines(fs.readFileSync(f.logPath, 'utf8'))[0]!) as AuditEntry;
    expect(restart.action).toBe('audit.restart');
    const archived = (restart.data as { archived: string }).archived;
    expect(fs.readFileSync(path.join(f.loki.root, archived), 'utf8')).toBe(truncated);
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.restarts).toHaveLength(1);
  });

  it('a log whose last line is unreadable is archived and the chain restarts', async () => {
    const f = copyFixture(`${pristine.log}{not json}\n`);
    await f.log.append('after.garbage');
    const v = f.log.verify();
    expect(v.ok).toBe(false);
    expect(v.count).toBe(2);
    expect(v.restarts).toHaveLength(1);
    expect(v.restarts[0]!.reason).toMatch(/quarantine/);
  });

  it('appends by one instance are seen by a second instance in the same process', async () => {
    const f = openFixture();
    const a = f.log;
    const b = secondInstance(f);
    const seqs: number[] = [];
    for (let i = 0; i < 30; i++) {
      seqs.push((await a.append('a', undefined, { i })).seq);
      seqs.push((await b.append('b', undefined, { i })).seq);
      if (i % 3 === 0) seqs.push((await b.append('b2', undefined, { i })).seq);
    }
    expect(seqs).toEqual(seqs.map((_, i) => i));
    for (const inst of [a, b]) {
      const v = inst.verify();
      expect(v).toMatchObject({ ok: true, count: seqs.length });
    }
    // Concurrently, through two LockManagers (so only the lock file keeps them apart).
    const more = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).append('mixed', undefined, { i })));
    expect(new Set(more.map((e) => e.seq)).size).toBe(40);
    expect(Math.min(...more.map((e) => e.seq))).toBe(seqs.length);
    expect(a.verify()).toMatchObject({ ok: true, count: seqs.length + 40 });
  });

  it('100 parallel appends in one process make a valid chain of exactly 100 entries, in call order', async () => {
    const f = openFixture();
    const entries = await Promise.all(Array.from({ length: 100 }, (_, i) => f.log.append('parallel', `t-${i}`, { i })));
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i));
    const v = f.log.verify();
    expect(v).toMatchObject({ ok: true, count: 100, tornTail: false, restarts: [] });
    expect(v.anchors.every((a) => a.status === 'ok' && a.count === 100)).toBe(true);
    const lines = toLines(fs.readFileSync(f.logPath, 'utf8'));
    expect(lines.map((l) => (JSON.parse(l) as AuditEntry).data)).toEqual(entries.map((_, i) => ({ i })));
    expect(new Set(lines.map((l) => (JSON.parse(l) as AuditEntry).prev)).size).toBe(100);
  });

  it('large data is replaced by its size and digest', async () => {
    const f = openFixture();
    const e = await f.log.append('big', undefined, { blob: 'x'.repeat(20_000) });
    expect(e.data).toMatchObject({ truncated: true, bytes: expect.any(Number) as number, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string });
    expect(f.log.verify().ok).toBe(true);
  });
});
