/**
 * The audit log: the `audit` table of `.loki/loki.db`, one hash-chained entry per change (audit/chain.ts),
 * appended inside the transaction of the change it records, so a change and its entry are committed together
 * or not at all.
 *
 * The chain shows an entry edited, deleted, inserted or reordered. What it cannot show by itself is a
 * consistent rewrite of its tail, or its truncation: for that an anchor (entry count and head hash) is kept
 * outside the project, in `$LOKI_HOME/anchors/`, updated after each commit. An anchor may lag the log (a crash
 * between the commit and the anchor write, or two processes finishing in the other order), so verification
 * requires the anchor to be a prefix of the log. Someone who can write both the project and `$LOKI_HOME` (the
 * same user) can rewrite both consistently: docs/decisions/002-audit-chain-and-external-anchor.md says so, and
 * `loki audit export` gives the user a copy to keep where the agent cannot reach.
 */
import crypto from 'node:crypto';
import {
  type Anchor,
  type AuditEntry,
  type ChainBreak,
  GENESIS,
  canonicalJson,
  checkAnchor,
  entryHashOfJson,
  serializeJsonEntry,
} from './chain.js';
import type { Db } from '../store/db.js';
import { faultPoint } from '../store/fault.js';
import type { AnchorFile } from './anchor.js';

export const MAX_DATA_BYTES = 8 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Takes the secrets out of an entry's data before it is hashed into the chain, where nothing can be removed later:
 * domain/secrets.ts scrubStoredData. That sits above this layer, so the store is handed it by whoever opens it
 * (Project, the usage hook); a store opened without one (tests of the store itself) keeps data as given.
 */
export type Redactor = (data: unknown) => { value: unknown; report: { redacted: number } };

export interface AuditNote {
  action: string;
  target?: string | undefined;
  data?: unknown;
  /** Who made the change, when not this process. */
  actor?: string | undefined;
}

export interface AuditVerifyResult {
  ok: boolean;
  count: number;
  head: string;
  anchors: { label: string; count: number | null; status: 'ok' | 'missing' | 'unreadable' | 'mismatch' }[];
  firstBreak?: ChainBreak;
}

interface Row {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string | null;
  data: string | null;
  prev: string;
  hash: string;
}

export class AuditLog {
  /** The newest entry appended by the transaction under way (its anchor is written after the commit). */
  private pending: Anchor | undefined;
  private warnedAnchor = false;

  constructor(
    private readonly db: Db,
    private readonly external: AnchorFile | undefined,
    private readonly actor: string,
    private readonly redact?: Redactor,
  ) {}

  /**
   * `data` as it is stored: scrubbed, with the number of values redacted said in the entry (`secretsRedacted`) when
   * it is an object. Scrubbing twice changes nothing (a redaction marker is not a secret), so Store.mutate may
   * measure the data this way before it appends it.
   */
  scrub(data: unknown): unknown {
    if (!this.redact || data === undefined) return data;
    const { value, report } = this.redact(data);
    if (report.redacted === 0 || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    const had = (value as { secretsRedacted?: unknown }).secretsRedacted;
    return { ...value, secretsRedacted: report.redacted + (typeof had === 'number' ? had : 0) };
  }

  /**
   * Append entries, in order, inside the current transaction; with none open, in a transaction of their own
   * (then the anchor is updated here). The entry chains onto the last row, whatever state the chain is in: a
   * break stays visible to verify().
   */
  appendAll(notes: readonly AuditNote[]): AuditEntry[] {
    if (notes.length === 0) return [];
    if (this.db.inTransaction) return this.appendIn(notes);
    let out: AuditEntry[];
    try {
      out = this.db.tx(() => this.appendIn(notes));
    } catch (err) {
      this.rolledBack();
      throw err;
    }
    this.committed();
    return out;
  }

  private appendIn(notes: readonly AuditNote[]): AuditEntry[] {
    const last = this.db.get<{ seq: number; hash: string }>('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
    let seq = last ? last.seq + 1 : 0;
    let prev = last?.hash ?? GENESIS;
    const ts = new Date().toISOString();
    const out: AuditEntry[] = [];
    for (const n of notes) {
      // Scrubbed before it is hashed: once in the chain, a secret could only be removed by breaking it.
      const data = n.data === undefined ? undefined : boundData(this.scrub(n.data));
      const fields = {
        ts,
        actor: n.actor ?? this.actor,
        action: n.action,
        ...(n.target !== undefined ? { target: n.target } : {}),
      };
      const hash = entryHashOfJson(prev, seq, fields, data);
      this.db.run(
        'INSERT INTO audit (seq, ts, actor, action, target, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        seq,
        fields.ts,
        fields.actor,
        fields.action,
        n.target ?? null,
        data ?? null,
        prev,
        hash,
      );
      out.push({ seq, ...fields, ...(data !== undefined ? { data: JSON.parse(data) as unknown } : {}), prev, hash });
      prev = hash;
      seq++;
    }
    this.pending = { count: seq, head: prev };
    return out;
  }

  /**
   * Whether `anchor` (a commit of this process's) moves the external anchor forward. Read after the commit, outside
   * the write lock: another process's anchor, written later, may be for a later commit (then ours is not needed).
   * An anchor the log no longer extends is evidence (entries removed or rewritten): it is left as it is, so
   * verify() keeps reporting the break, rather than moved onto the changed log.
   */
  private movesAnchor(external: AnchorFile, anchor: Anchor): boolean {
    // Whether the anchor read last held, so the log is asked once a read.
    let holds = false;
    const a = external.read((read) => (holds = this.extends(read)));
    if (a === 'missing') return true;
    if (a !== 'unreadable' && holds) return a.count < anchor.count;
    if (!this.warnedAnchor) {
      this.warnedAnchor = true;
      const what = a === 'unreadable' ? 'cannot be read' : 'no longer matches the audit log';
      process.emitWarning(`loki: ${external.label} ${what} (run loki audit verify); it is left as evidence`, {
        code: 'LOKI_AUDIT_ANCHOR',
      });
    }
    return false;
  }

  /** Whether the log as it is now begins with the anchor's entries (its entry `count - 1` has the anchor's head). */
  private extends(a: Anchor): boolean {
    return (
      a.count === 0 ||
      this.db.get<{ hash: string }>('SELECT hash FROM audit WHERE seq = ?', a.count - 1)?.hash === a.head
    );
  }

  append(action: string, target?: string, data?: unknown): AuditEntry {
    return this.appendAll([{ action, target, data }])[0]!;
  }

  /** After a commit: move the external anchor up to what the transaction appended. Never throws. */
  committed(): void {
    const anchor = this.pending;
    this.pending = undefined;
    if (!anchor || !this.external) return;
    faultPoint('audit-before-anchor');
    try {
      if (this.movesAnchor(this.external, anchor)) this.external.write(anchor);
    } catch (err) {
      process.emitWarning(`loki: could not update ${this.external.label}: ${(err as Error).message}`, {
        code: 'LOKI_AUDIT_ANCHOR',
      });
    }
  }

  /** Let go of the anchor file this process keeps open. */
  close(): void {
    this.external?.close();
  }

  /** The transaction was rolled back: nothing it appended exists. */
  rolledBack(): void {
    this.pending = undefined;
  }

  /** The seq of the newest entry (-1: none): it moves with every change a process records, so one read tells a watcher whether anything happened. */
  head(): number {
    return this.db.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM audit')?.seq ?? -1;
  }

  count(): number {
    return this.db.get<{ n: number }>('SELECT count(*) AS n FROM audit')!.n;
  }

  /** How many entries each action has (the dashboard's /metrics counters). One indexed scan. */
  countByAction(): Map<string, number> {
    const rows = this.db.all<{ action: string; n: number }>('SELECT action, count(*) AS n FROM audit GROUP BY action');
    return new Map(rows.map((r) => [r.action, r.n]));
  }

  /** The actions recorded after the latest entry of `action` (null when there is none), oldest first. */
  actionsSince(action: string, limit = 500): string[] | null {
    const last = this.db.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM audit WHERE action = ?', action);
    if (!last || last.seq === null) return null;
    return this.db
      .all<{ action: string }>('SELECT action FROM audit WHERE seq > ? ORDER BY seq LIMIT ?', last.seq, limit)
      .map((r) => r.action);
  }

  /** Entries from `from` (0-based), oldest first, at most `limit`. */
  entries(from = 0, limit = 1000): AuditEntry[] {
    return this.db.all<Row>('SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?', from, limit).map(toEntry);
  }

  /** The whole log as JSON lines, each exactly the text its hash covers (audit/chain.ts verifies it as a file). */
  *exportLines(): Generator<string> {
    let from = 0;
    for (;;) {
      const rows = this.db.all<Row>('SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT 1000', from);
      for (const r of rows) yield serializeJsonEntry(entryOf(r), r.data ?? undefined);
      if (rows.length < 1000) return;
      from = rows[rows.length - 1]!.seq + 1;
    }
  }

  /** Re-hash the whole chain in order and compare it with the external anchor. Read-only. */
  verify(): AuditVerifyResult {
    // Read before the scan: an anchor is only written after its commit, so it is then a prefix of what the scan
    // sees, even while other processes append.
    const anchor = this.external?.read((a) => this.extends(a));
    const hashes: string[] = [];
    let prev = GENESIS;
    let firstBreak: ChainBreak | undefined;
    let from = 0;
    let expected = 0;
    scan: for (;;) {
      const rows = this.db.all<Row>('SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT 1000', from);
      for (const r of rows) {
        const problem = checkRow(r, expected, prev);
        if (problem) {
          firstBreak = { index: expected, reason: problem };
          break scan;
        }
        hashes.push(r.hash);
        prev = r.hash;
        expected++;
      }
      if (rows.length < 1000) break;
      from = rows[rows.length - 1]!.seq + 1;
    }
    const report = { ok: !firstBreak, count: expected, head: prev, tornTail: false };
    const anchors: AuditVerifyResult['anchors'] = [];
    if (this.external && anchor !== undefined) {
      const a = anchor;
      if (a === 'missing' || a === 'unreadable') {
        anchors.push({ label: this.external.label, count: null, status: a });
        if (a === 'unreadable' && !firstBreak)
          firstBreak = { index: expected, reason: `${this.external.label} is unreadable` };
        // An anchor removed while the log has entries is itself a sign of tampering, unless this is a new home.
        if (a === 'missing' && expected > 0 && !firstBreak)
          firstBreak = {
            index: 0,
            reason: `${this.external.label} is missing although the log has ${expected} entries: it was deleted, or $LOKI_HOME changed`,
          };
      } else {
        const mismatch = report.ok ? checkAnchor(report, a, (i) => hashes[i], this.external.label) : undefined;
        anchors.push({ label: this.external.label, count: a.count, status: mismatch ? 'mismatch' : 'ok' });
        if (mismatch && !firstBreak) firstBreak = mismatch;
      }
    }
    const result: AuditVerifyResult = { ok: !firstBreak, count: expected, head: prev, anchors };
    if (firstBreak) result.firstBreak = firstBreak;
    return result;
  }
}

function entryOf(r: Row): Omit<AuditEntry, 'data'> {
  return {
    seq: r.seq,
    ts: r.ts,
    actor: r.actor,
    action: r.action,
    ...(r.target !== null ? { target: r.target } : {}),
    prev: r.prev,
    hash: r.hash,
  };
}

function toEntry(r: Row): AuditEntry {
  return { ...entryOf(r), ...(r.data !== null ? { data: JSON.parse(r.data) as unknown } : {}) };
}

function checkRow(r: Row, index: number, prev: string): string | undefined {
  if (r.seq !== index)
    return `sequence number ${r.seq} where ${index} was expected (entry deleted, inserted or reordered)`;
  if (!HEX64.test(r.prev) || !HEX64.test(r.hash)) return 'malformed hash';
  if (r.prev !== prev) return 'prev does not match the hash of the entry before it (entry removed, replaced or forked)';
  if (r.data !== null) {
    let canonical: string;
    try {
      canonical = canonicalJson(JSON.parse(r.data));
    } catch {
      return 'data is not valid JSON (edited by hand)';
    }
    if (canonical !== r.data) return 'data is not in canonical form (edited by hand)';
  }
  const fields = { ts: r.ts, actor: r.actor, action: r.action, ...(r.target !== null ? { target: r.target } : {}) };
  if (entryHashOfJson(r.prev, r.seq, fields, r.data ?? undefined) !== r.hash)
    return 'hash does not match the entry contents (entry edited)';
  return undefined;
}

/** Keep entries small: large data is replaced by its size and digest. Returns canonical JSON text. */
function boundData(data: unknown): string {
  const text = canonicalJson(data);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= MAX_DATA_BYTES) return text;
  return canonicalJson({ truncated: true, bytes, sha256: crypto.createHash('sha256').update(text).digest('hex') });
}
