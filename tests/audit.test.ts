/**
 * The audit chain: pure tests of chain.ts, and tests of AuditLog (log.ts) over a real database.
 *
 * The pure tests tamper with the text of a 1,000-entry chain. The database tests build a 1,000-entry log once
 * through real `append` calls, copy the database and its external anchor for each case, tamper with the copy
 * with SQL (as an agent with the sqlite3 shell would), and require verification to fail at the first bad entry.
 * Tamperings that leave a self-consistent chain (a full rewrite, a truncation) can only be caught by the anchor.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
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
import { AnchorFile, externalAnchorFile } from '../mcp-server/src/audit/anchor.js';
import { Store } from '../mcp-server/src/store/store.js';

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

function dataFor(i: number): unknown {
  return { i, note: `café ${i}`, n: 1, tags: ['a', 'b'], nested: { z: i % 7, a: 'x' } };
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
      t.push({
        name: `entry ${k}: ${name}`,
        mutate: (ls) => setLine(ls, k, (l) => flipAt(l, pos(l), mask)),
        index: k,
        chainDetects: true,
      });
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
  t.push({
    name: 'middle entry deleted',
    mutate: (ls) => [...ls.slice(0, 500), ...ls.slice(501)],
    index: 500,
    chainDetects: true,
  });
  t.push({
    name: 'last entry deleted',
    mutate: (ls) => ls.slice(0, -1),
    index: N - 1,
    chainDetects: false,
    reason: /truncated or removed/,
  });

  // Reordering.
  const swap = (ls: string[], a: number, b: number) => {
    const out = ls.slice();
    [out[a], out[b]] = [out[b]!, out[a]!];
    return out;
  };
  t.push({
    name: 'adjacent entries swapped (500, 501)',
    mutate: (ls) => swap(ls, 500, 501),
    index: 500,
    chainDetects: true,
  });
  t.push({ name: 'first two entries swapped', mutate: (ls) => swap(ls, 0, 1), index: 0, chainDetects: true });
  t.push({
    name: 'last two entries swapped',
    mutate: (ls) => swap(ls, N - 2, N - 1),
    index: N - 2,
    chainDetects: true,
  });
  t.push({
    name: 'distant entries swapped (100, 800)',
    mutate: (ls) => swap(ls, 100, 800),
    index: 100,
    chainDetects: true,
  });

  // Duplication / replay.
  t.push({
    name: 'entry 500 duplicated in place',
    mutate: (ls) => [...ls.slice(0, 501), ls[500]!, ...ls.slice(501)],
    index: 501,
    chainDetects: true,
  });
  t.push({ name: 'first entry duplicated', mutate: (ls) => [ls[0]!, ...ls], index: 1, chainDetects: true });
  t.push({ name: 'entry 10 replayed at the end', mutate: (ls) => [...ls, ls[10]!], index: N, chainDetects: true });
  t.push({ name: 'last entry replayed at the end', mutate: (ls) => [...ls, ls[N - 1]!], index: N, chainDetects: true });
  t.push({
    name: 'entry 900 replayed over entry 100',
    mutate: (ls) => setLine(ls, 100, () => ls[900]!),
    index: 100,
    chainDetects: true,
  });

  // Self-consistent forgeries: only the anchors can catch these.
  const forged: AuditFields = {
    ts: '2020-01-01T00:00:00.000Z',
    actor: 'test',
    action: 'gate.override',
    target: 'gate',
    data: { approved: true },
  };
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
    mutate: (ls) =>
      rechain(ls.map((l, i) => (i === 3 ? { ...fieldsOf(l), ts: '1999-01-01T00:00:00.000Z' } : fieldsOf(l)))),
    index: N - 1,
    chainDetects: false,
    reason: /rewritten/,
  });
  t.push({
    name: 'last 100 entries truncated',
    mutate: (ls) => ls.slice(0, N - 100),
    index: N - 100,
    chainDetects: false,
    reason: /truncated/,
  });
  t.push({ name: 'truncated to empty', mutate: () => [], index: 0, chainDetects: false, reason: /truncated/ });
  t.push({
    name: 'truncated to one entry',
    mutate: (ls) => ls.slice(0, 1),
    index: 1,
    chainDetects: false,
    reason: /truncated/,
  });

  // Forks: two entries sharing one prev.
  const sibling = (ls: string[], k: number, seq: number) => {
    const e = JSON.parse(ls[k]!) as AuditEntry;
    return serializeEntry(makeEntry(e.prev, seq, { ...fieldsOf(ls[k]!), action: 'fork.sibling' })).slice(0, -1);
  };
  t.push({
    name: 'fork: sibling of entry 500 (same prev, same seq) inserted after it',
    mutate: (ls) => [...ls.slice(0, 501), sibling(ls, 500, 500), ...ls.slice(501)],
    index: 501,
    chainDetects: true,
  });
  t.push({
    name: 'fork: entry 501 replaced by a sibling of 500 carrying seq 501',
    mutate: (ls) => setLine(ls, 501, () => sibling(ls, 500, 501)),
    index: 501,
    chainDetects: true,
    reason: /prev does not match/,
  });
  t.push({
    name: 'fork: entry 500 replaced by a sibling (same prev), rest kept',
    mutate: (ls) => setLine(ls, 500, () => sibling(ls, 500, 500)),
    index: 501,
    chainDetects: true,
    reason: /prev does not match/,
  });
  t.push({
    name: 'fork: two branches from entry 499 interleaved',
    mutate: (ls) => {
      const branch = rechain([
        ...ls.slice(0, 500).map(fieldsOf),
        ...ls.slice(500).map((l) => ({ ...fieldsOf(l), actor: 'branch' })),
      ]);
      return [...ls.slice(0, 501), branch[500]!, ...ls.slice(501)];
    },
    index: 501,
    chainDetects: true,
  });

  // Canonicalisation traps: the hash still matches (same parsed value), but the text is not what was written.
  for (const k of [0, 500, N - 1]) {
    const trap = (name: string, f: (l: string) => string) =>
      t.push({
        name: `entry ${k}: ${name}`,
        mutate: (ls) => setLine(ls, k, f),
        index: k,
        chainDetects: true,
        reason: /canonical/,
      });
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
  t.push({
    name: 'blank line inserted before entry 500',
    mutate: (ls) => [...ls.slice(0, 500), '', ...ls.slice(500)],
    index: 500,
    chainDetects: true,
    reason: /JSON/,
  });
  t.push({ name: 'blank line at the start', mutate: (ls) => ['', ...ls], index: 0, chainDetects: true });

  // Wrong genesis.
  t.push({
    name: 'chain rebuilt on a wrong genesis (f...f)',
    mutate: (ls) => rechain(ls.map(fieldsOf), 'f'.repeat(64)),
    index: 0,
    chainDetects: true,
    reason: /prev/,
  });
  t.push({
    name: 'chain rebuilt on a wrong genesis (0...01)',
    mutate: (ls) => rechain(ls.map(fieldsOf), `${'0'.repeat(63)}1`),
    index: 0,
    chainDetects: true,
    reason: /prev/,
  });
  t.push({
    name: 'first entry claims a non-genesis prev',
    mutate: (ls) => setLine(ls, 0, (l) => serializeEntry(makeEntry('a'.repeat(64), 0, fieldsOf(l))).slice(0, -1)),
    index: 0,
    chainDetects: true,
  });

  // Uppercase hex.
  for (const k of [0, 500, N - 1]) {
    t.push({
      name: `entry ${k}: hash in uppercase hex`,
      mutate: (ls) =>
        setLine(ls, k, (l) => l.replace(/"hash":"([0-9a-f]{64})"/, (_m, h: string) => `"hash":"${h.toUpperCase()}"`)),
      index: k,
      chainDetects: true,
      reason: /malformed hash/,
    });
    // (Entry 0's prev is the all-zero genesis, which has no letters to uppercase: use entry 1 instead.)
    const kp = k === 0 ? 1 : k;
    t.push({
      name: `entry ${kp}: prev in uppercase hex`,
      mutate: (ls) =>
        setLine(ls, kp, (l) => l.replace(/"prev":"([0-9a-f]{64})"/, (_m, h: string) => `"prev":"${h.toUpperCase()}"`)),
      index: kp,
      chainDetects: true,
      reason: /malformed prev/,
    });
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
    if (!report.ok)
      return { ok: false, index: report.firstBreak!.index, reason: report.firstBreak!.reason, chainOk: false };
    const mismatch = checkAnchor(report, anchor, (i) => hashes[i], 'the anchor');
    return mismatch
      ? { ok: false, index: mismatch.index, reason: mismatch.reason, chainOk: true }
      : { ok: true, chainOk: true };
  }

  it('a 1,000-entry chain built with makeEntry verifies, with the anchor', () => {
    const report = verifyChainText(fromLines(lines));
    expect(report).toEqual({ ok: true, count: N, head: anchor.head, tornTail: false });
    expect(judge(fromLines(lines)).ok).toBe(true);
    expect(JSON.parse(lines[0]!).prev).toBe(GENESIS);
  });

  it('canonicalJson sorts keys at every depth, drops undefined, keeps null and refuses non-finite numbers', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: undefined }, e: null })).toBe(
      '{"a":{"d":[3,{"x":2,"y":1}]},"b":1,"e":null}',
    );
    expect(canonicalJson({ n: 1.0, s: 'é\u2028"' })).toBe('{"n":1,"s":"é\u2028\\""}');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    // The hash does not depend on key order or on spelling of the same value.
    const f = { ts: 't', actor: 'a', action: 'x', data: { b: 1, a: 2 } };
    expect(entryHash(GENESIS, 0, f)).toBe(
      entryHash(GENESIS, 0, { data: { a: 2, b: 1.0 }, action: 'x', actor: 'a', ts: 't' }),
    );
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
    expect(chain.ok, `chain alone ${chain.ok ? 'accepted' : 'rejected'} it: ${chain.firstBreak?.reason ?? ''}`).toBe(
      !t.chainDetects,
    );
    if (t.chainDetects) expect(chain.firstBreak!.index).toBe(t.index);
    const verdict = judge(text);
    expect(verdict.ok).toBe(false);
    expect(verdict.index).toBe(t.index);
    if (t.reason) expect(verdict.reason).toMatch(t.reason);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// File tests: AuditLog

// ---------------------------------------------------------------------------------------------------------------
// AuditLog over the database

describe('AuditLog (database)', () => {
  let pristine: { db: Buffer; anchor: Buffer; head: string };

  interface Opened {
    root: string;
    home: string;
    store: Store;
    anchorFile: string;
    /** Run SQL on the database through a second connection, as a tampering agent would. */
    sql(text: string, ...params: (string | number | null)[]): void;
  }

  function open(root = tmpDir('loki-audit-project-'), home = tmpDir('loki-audit-home-')): Opened {
    const store = Store.open(root, home, 'test');
    return {
      root,
      home,
      store,
      anchorFile: externalAnchorFile(home, fs.realpathSync(root)),
      sql(text, ...params) {
        const db = new DatabaseSync(path.join(root, '.loki', 'loki.db'));
        try {
          db.prepare(text).run(...params);
        } finally {
          db.close();
        }
      },
    };
  }

  beforeAll(() => {
    const f = open();
    f.store.tx(() => {
      for (let i = 0; i < N; i++) expect(f.store.audit.append('task.update', `task-${i}`, dataFor(i)).seq).toBe(i);
    });
    const file = path.join(tmpDir('loki-audit-copy-'), 'pristine.db');
    f.store.db.snapshotTo(file);
    pristine = { db: fs.readFileSync(file), anchor: fs.readFileSync(f.anchorFile), head: f.store.audit.verify().head };
    // The anchor is private to the user.
    expect(fs.statSync(f.anchorFile).mode & 0o777).toBe(0o600);
    f.store.close();
  }, 60_000);

  /** A fresh project holding a copy of the pristine database and (unless told not to) its anchor. */
  function copy(withAnchor = true): Opened {
    const root = tmpDir('loki-audit-project-');
    const home = tmpDir('loki-audit-home-');
    fs.mkdirSync(path.join(root, '.loki'), { mode: 0o700 });
    fs.writeFileSync(path.join(root, '.loki', 'loki.db'), pristine.db, { mode: 0o600 });
    const f = open(root, home);
    if (withAnchor) {
      fs.mkdirSync(path.dirname(f.anchorFile), { recursive: true });
      fs.writeFileSync(f.anchorFile, pristine.anchor);
    }
    return f;
  }

  it('1,000 real appends verify, and the external anchor records {count, head}', () => {
    const f = copy();
    const v = f.store.audit.verify();
    expect(v).toMatchObject({ ok: true, count: N, head: pristine.head });
    expect(v.anchors).toEqual([{ label: expect.stringContaining('external anchor'), count: N, status: 'ok' }]);
    expect(JSON.parse(pristine.anchor.toString('utf8'))).toEqual({ count: N, head: pristine.head });
    // The export is the chain as text: the pure verifier accepts it and it matches the anchor.
    const text = [...f.store.audit.exportLines()].join('');
    const report = verifyChainText(text);
    expect(report).toMatchObject({ ok: true, count: N, head: pristine.head });
  });

  const SQL_TAMPERINGS: { name: string; sql: string[]; index: number; reason: RegExp; anchorOnly?: boolean }[] = [
    {
      name: 'an action edited',
      sql: ["UPDATE audit SET action = 'task.nothing' WHERE seq = 500"],
      index: 500,
      reason: /entry edited/,
    },
    {
      name: 'an actor edited',
      sql: ["UPDATE audit SET actor = 'someone else' WHERE seq = 3"],
      index: 3,
      reason: /entry edited/,
    },
    {
      name: 'a timestamp edited',
      sql: ["UPDATE audit SET ts = '2020-01-01T00:00:00.000Z' WHERE seq = 999"],
      index: 999,
      reason: /entry edited/,
    },
    {
      name: 'data edited (still canonical JSON)',
      sql: ["UPDATE audit SET data = json_set(data, '$.i', 12345) WHERE seq = 42"],
      index: 42,
      reason: /entry edited/,
    },
    {
      name: 'data re-encoded (same meaning, other bytes)',
      sql: ['UPDATE audit SET data = json_pretty(data) WHERE seq = 7'],
      index: 7,
      reason: /canonical/,
    },
    {
      name: 'the target removed',
      sql: ['UPDATE audit SET target = NULL WHERE seq = 10'],
      index: 10,
      reason: /entry edited/,
    },
    { name: 'an entry deleted', sql: ['DELETE FROM audit WHERE seq = 250'], index: 250, reason: /sequence number/ },
    { name: 'the first entry deleted', sql: ['DELETE FROM audit WHERE seq = 0'], index: 0, reason: /sequence number/ },
    {
      name: 'two entries swapped',
      sql: [
        'UPDATE audit SET seq = -1 WHERE seq = 100',
        'UPDATE audit SET seq = 100 WHERE seq = 101',
        'UPDATE audit SET seq = 101 WHERE seq = -1',
      ],
      index: 100,
      reason: /prev does not match/,
    },
    {
      name: 'a hash replaced by another entry’s',
      sql: ['UPDATE audit SET hash = (SELECT hash FROM audit WHERE seq = 11) WHERE seq = 10'],
      index: 10,
      reason: /prev does not match|entry edited/,
    },
    {
      name: 'the tail truncated',
      sql: ['DELETE FROM audit WHERE seq >= 900'],
      index: 900,
      reason: /truncated or removed/,
      anchorOnly: true,
    },
    {
      name: 'the whole log emptied',
      sql: ['DELETE FROM audit'],
      index: 0,
      reason: /truncated or removed/,
      anchorOnly: true,
    },
  ];

  it.each(SQL_TAMPERINGS.map((t) => [t.name, t] as const))('verify() fails at the first bad entry: %s', (_name, t) => {
    const f = copy();
    for (const q of t.sql) f.sql(q);
    const v = f.store.audit.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.index).toBe(t.index);
    expect(v.firstBreak?.reason).toMatch(t.reason);
    if (t.anchorOnly) {
      // The chain itself is consistent: only the anchor outside the project shows the damage.
      expect(verifyChainText([...f.store.audit.exportLines()].join('')).ok).toBe(true);
    }
    f.store.close();
  });

  it('a consistent rewrite of the whole chain is caught by the anchor', () => {
    const f = copy();
    const fields: AuditFields[] = f.store.audit
      .entries(0, N)
      .map(({ seq: _s, prev: _p, hash: _h, ...rest }) => ({ ...rest, actor: 'forger' }));
    const forged = rechain(fields).map((l) => JSON.parse(l) as AuditEntry);
    f.sql('DELETE FROM audit');
    for (const e of forged) {
      f.sql(
        'INSERT INTO audit (seq, ts, actor, action, target, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        e.seq,
        e.ts,
        e.actor,
        e.action,
        e.target ?? null,
        e.data === undefined ? null : canonicalJson(e.data),
        e.prev,
        e.hash,
      );
    }
    expect(verifyChainText([...f.store.audit.exportLines()].join('')).ok).toBe(true);
    const v = f.store.audit.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBreak?.reason).toMatch(/rewritten/);
    expect(v.anchors[0]!.status).toBe('mismatch');
  });

  it('a truncated or rewritten tail stays detectable after later changes: the anchor is left as evidence', () => {
    const cut = copy();
    cut.sql('DELETE FROM audit WHERE seq >= 900');
    cut.store.mutate(
      () => 1,
      () => ({ action: 'after.truncation' }),
    );
    expect(JSON.parse(fs.readFileSync(cut.anchorFile, 'utf8'))).toEqual({ count: N, head: pristine.head });
    expect(cut.store.audit.verify()).toMatchObject({
      ok: false,
      firstBreak: { reason: expect.stringMatching(/truncated or removed/) },
    });
    cut.store.close();

    // The last entry edited and re-hashed (a consistent chain), then more changes on top of it.
    const forged = copy();
    const last = forged.store.audit.entries(N - 1, 1)[0]!;
    const { seq: _s, prev: _p, hash: _h, ...fields } = last;
    const redone = makeEntry(last.prev, N - 1, { ...fields, action: 'nothing.happened' });
    forged.sql('UPDATE audit SET action = ?, hash = ? WHERE seq = ?', redone.action, redone.hash, N - 1);
    for (let i = 0; i < 3; i++) {
      forged.store.mutate(
        () => i,
        () => ({ action: 'after.rewrite' }),
      );
    }
    expect(forged.store.audit.verify()).toMatchObject({
      ok: false,
      firstBreak: { reason: expect.stringMatching(/rewritten/) },
    });
    forged.store.close();
  });

  it('an anchor deleted while the log has entries is a break; an unreadable one too', () => {
    const gone = copy(false);
    expect(gone.store.audit.verify()).toMatchObject({
      ok: false,
      firstBreak: { index: 0, reason: expect.stringMatching(/missing/) },
    });
    const bad = copy();
    fs.writeFileSync(bad.anchorFile, 'not json');
    expect(bad.store.audit.verify()).toMatchObject({
      ok: false,
      firstBreak: { reason: expect.stringMatching(/unreadable/) },
    });
  });

  it('the anchor is rewritten in place: one file of one size, no temporary files, a longer one cut to the record', () => {
    const f = copy();
    // Written by hand (or by an older loki-mode) with a long tail: the next commit's record replaces all of it.
    fs.writeFileSync(
      f.anchorFile,
      `${JSON.stringify({ count: N, head: pristine.head }, null, 8)}\n${' '.repeat(300)}\n`,
    );
    const inode = fs.statSync(f.anchorFile).ino;
    for (let i = 0; i < 5; i++) f.store.audit.append('in.place', `t${i}`);
    expect(fs.readdirSync(path.dirname(f.anchorFile))).toEqual([path.basename(f.anchorFile)]);
    expect(fs.statSync(f.anchorFile)).toMatchObject({ ino: inode, size: 128 });
    const head = f.store.audit.entries(N + 4, 1)[0]!.hash;
    expect(JSON.parse(fs.readFileSync(f.anchorFile, 'utf8'))).toEqual({ count: N + 5, head });
    expect(f.store.audit.verify()).toMatchObject({ ok: true, count: N + 5 });
    f.store.close();
  });

  it('an anchor removed while a store holds it open is made again at the next commit, 0600', () => {
    const f = copy();
    f.store.audit.append('before');
    fs.rmSync(f.anchorFile);
    f.store.audit.append('after');
    expect(JSON.parse(fs.readFileSync(f.anchorFile, 'utf8'))).toMatchObject({ count: N + 2 });
    expect(fs.statSync(f.anchorFile).mode & 0o777).toBe(0o600);
    expect(f.store.audit.verify()).toMatchObject({ ok: true, count: N + 2 });
    f.store.close();
  });

  it("a link planted at the anchor's name is replaced, not written through", () => {
    const f = copy();
    const target = path.join(tmpDir('loki-audit-elsewhere-'), 'victim.json');
    // What it points at reads as a lagging anchor, so a commit would move it forward.
    const before = `${canonicalJson({ count: N, head: pristine.head })}\n`;
    fs.writeFileSync(target, before);
    fs.rmSync(f.anchorFile);
    fs.symlinkSync(target, f.anchorFile);
    f.store.audit.append('through.link');
    expect(fs.readFileSync(target, 'utf8')).toBe(before);
    expect(fs.lstatSync(f.anchorFile).isFile()).toBe(true);
    expect(JSON.parse(fs.readFileSync(f.anchorFile, 'utf8'))).toMatchObject({ count: N + 1 });
    f.store.close();
  });

  it("a hard link to the anchor (a backup's copy) keeps what it held: the name gets a file of its own", () => {
    const f = copy();
    f.store.audit.append('before.backup');
    const backup = path.join(tmpDir('loki-audit-backup-'), 'anchor.json');
    fs.linkSync(f.anchorFile, backup);
    const kept = fs.readFileSync(backup, 'utf8');
    f.store.audit.append('after.backup');
    expect(fs.readFileSync(backup, 'utf8')).toBe(kept);
    expect(fs.statSync(backup).ino).not.toBe(fs.statSync(f.anchorFile).ino);
    expect(JSON.parse(fs.readFileSync(f.anchorFile, 'utf8'))).toMatchObject({ count: N + 2 });
    // From then on the new file is written in place.
    const inode = fs.statSync(f.anchorFile).ino;
    f.store.audit.append('later');
    expect(fs.statSync(f.anchorFile).ino).toBe(inode);
    f.store.close();
  });

  it('an anchor renamed away while a store holds it is made again at the name', () => {
    const f = copy();
    f.store.audit.append('before');
    fs.renameSync(f.anchorFile, `${f.anchorFile}.moved`);
    f.store.audit.append('after');
    expect(JSON.parse(fs.readFileSync(f.anchorFile, 'utf8'))).toMatchObject({ count: N + 2 });
    expect(JSON.parse(fs.readFileSync(`${f.anchorFile}.moved`, 'utf8'))).toMatchObject({ count: N + 1 });
    f.store.close();
  });

  it('a record followed by the tail of a longer file (a crash before the cut) still reads as the record', () => {
    const f = copy();
    fs.writeFileSync(f.anchorFile, `${canonicalJson({ count: N, head: pristine.head })}\n${'x'.repeat(200)}\n`);
    expect(f.store.audit.verify()).toMatchObject({ ok: true, anchors: [{ status: 'ok', count: N }] });
    f.store.close();
  });

  it('a read that met a write half done is read again; an anchor that does not hold is read three times', () => {
    const f = copy();
    const good = { count: N, head: pristine.head };
    // Half of each record: the new count with the head of the one before (what a read racing a write can see).
    const torn = { count: N, head: f.store.audit.entries(N - 2, 1)[0]!.hash };
    fs.writeFileSync(f.anchorFile, `${canonicalJson(torn)}\n`);
    const anchor = new AnchorFile(f.home, fs.realpathSync(f.root));
    const seen: unknown[] = [];
    const read = anchor.read((a) => {
      seen.push(a);
      // The writer finishes while the reader checks what it read.
      if (seen.length === 1) fs.writeFileSync(f.anchorFile, `${canonicalJson(good)}\n`);
      return a.head === good.head;
    });
    expect(read).toEqual(good);
    expect(seen).toEqual([torn, good]);
    // Tampered, not torn: read three times, then taken as it is (verify reports it).
    fs.writeFileSync(f.anchorFile, `${canonicalJson(torn)}\n`);
    let reads = 0;
    expect(anchor.read(() => (reads++, false))).toEqual(torn);
    expect(reads).toBe(3);
    expect(f.store.audit.verify()).toMatchObject({ ok: false, anchors: [{ status: 'mismatch' }] });
    anchor.close();
    f.store.close();
  });

  it('an anchor that lags the log (a crash between the commit and the anchor write) is fine', () => {
    const f = copy();
    const lagging = f.store.audit.entries(499, 1)[0]!;
    fs.writeFileSync(f.anchorFile, `${canonicalJson({ count: 500, head: lagging.hash })}\n`);
    expect(f.store.audit.verify()).toMatchObject({ ok: true, count: N });
  });

  it('an entry appended in a transaction that rolls back leaves nothing, not even in the anchor', () => {
    const f = copy();
    expect(() =>
      f.store.mutate(
        () => {
          throw new Error('the change failed');
        },
        () => ({ action: 'never' }),
      ),
    ).toThrow('the change failed');
    expect(() =>
      f.store.tx(() => {
        f.store.audit.append('half.done');
        throw new Error('after the append');
      }),
    ).toThrow('after the append');
    expect(f.store.audit.count()).toBe(N);
    expect(JSON.parse(fs.readFileSync(f.anchorFile, 'utf8'))).toEqual({ count: N, head: pristine.head });
    f.store.mutate(
      () => 1,
      () => ({ action: 'after.rollback' }),
    );
    expect(f.store.audit.verify()).toMatchObject({ ok: true, count: N + 1 });
  });

  it('two stores (two connections) appending in turn make one valid chain', () => {
    const a = open();
    const b = open(a.root, a.home);
    for (let i = 0; i < 50; i++) {
      (i % 3 === 0 ? b : a).store.audit.append('turn', undefined, { i });
    }
    const v = a.store.audit.verify();
    expect(v).toMatchObject({ ok: true, count: 50 });
    expect(a.store.audit.entries().map((e) => (e.data as { i: number }).i)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
    a.store.close();
    b.store.close();
  });

  it('large data is replaced by its size and digest', () => {
    const f = open();
    const e = f.store.audit.append('big', undefined, { text: 'x'.repeat(20_000) });
    expect(e.data).toMatchObject({
      truncated: true,
      bytes: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(f.store.audit.verify().ok).toBe(true);
  });
});
