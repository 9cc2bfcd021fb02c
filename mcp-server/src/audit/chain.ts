/**
 * The audit chain, as pure functions. Entry i is one line of canonical JSON (sorted keys) holding `seq`, its
 * fields, `prev` (the hash of entry i-1, or the genesis value) and `hash`: the SHA-256 of that same line written
 * with an empty hash value, so it covers `prev` and every byte of the entry. Verification recomputes every hash,
 * checks every `prev` link and the contiguity of `seq`, and compares the result with anchors kept outside the
 * log, which is what catches truncation and full rewrites.
 */
import crypto from 'node:crypto';

export const GENESIS = '0'.repeat(64);

export interface AuditFields {
  ts: string;
  actor: string;
  action: string;
  target?: string;
  data?: unknown;
}

export interface AuditEntry extends AuditFields {
  seq: number;
  prev: string;
  hash: string;
}

export interface Anchor {
  count: number;
  head: string;
}

/** JSON with sorted object keys and no insignificant whitespace; the input must be plain JSON data. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('non-finite number in audit data');
    if (value === undefined) return 'null';
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

export function entryHash(prev: string, seq: number, fields: AuditFields): string {
  return sha256(entryLine({ ...fields, seq, prev, hash: '' }, dataJson(fields.data)));
}

/** entryHash for an entry whose data is already canonical JSON text (as the database keeps it). */
export function entryHashOfJson(
  prev: string,
  seq: number,
  fields: Omit<AuditFields, 'data'>,
  data: string | undefined,
): string {
  return sha256(entryLine({ ...fields, seq, prev, hash: '' }, data));
}

/** The line of an entry whose data is already canonical JSON text. */
export function serializeJsonEntry(entry: Omit<AuditEntry, 'data'>, data: string | undefined): string {
  return `${entryLine(entry, data)}\n`;
}

function dataJson(data: unknown): string | undefined {
  return data === undefined ? undefined : canonicalJson(data);
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/** canonicalJson(entry), built directly (keys in sorted order). */
function entryLine(e: AuditEntry, data: string | undefined): string {
  let s = `{"action":${JSON.stringify(e.action)},"actor":${JSON.stringify(e.actor)}`;
  if (data !== undefined) s += `,"data":${data}`;
  s += `,"hash":${JSON.stringify(e.hash)},"prev":${JSON.stringify(e.prev)},"seq":${e.seq}`;
  if (e.target !== undefined) s += `,"target":${JSON.stringify(e.target)}`;
  return `${s},"ts":${JSON.stringify(e.ts)}}`;
}

export function makeEntry(prevHash: string, seq: number, fields: AuditFields): AuditEntry {
  return { seq, ...fields, prev: prevHash, hash: entryHash(prevHash, seq, fields) };
}

/** The line written for an entry (with its trailing newline). */
export function serializeEntry(entry: AuditEntry): string {
  return `${entryLine(entry, dataJson(entry.data))}\n`;
}

export interface ChainBreak {
  /** 0-based index of the first bad line (or, for an anchor mismatch, the anchored position). */
  index: number;
  reason: string;
}

export interface ChainReport {
  ok: boolean;
  count: number;
  head: string;
  /** The final line had no newline (an export cut short): tolerated, and that line not counted. */
  tornTail: boolean;
  firstBreak?: ChainBreak;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** The only keys an entry may have; anything else would be outside the hash and could be added undetected. */
const HASH_KEY = ',"hash":"';
const ENTRY_KEYS = new Set(['seq', 'ts', 'actor', 'action', 'target', 'data', 'prev', 'hash']);

/** Verify a whole log text. Stops at the first break. */
export function verifyChainText(text: string, onEntry?: (entry: AuditEntry) => void): ChainReport {
  let tornTail = false;
  let body = text;
  if (body.length > 0 && !body.endsWith('\n')) {
    tornTail = true;
    body = body.slice(0, body.lastIndexOf('\n') + 1);
  }
  let prev = GENESIS;
  let count = 0;
  let start = 0;
  while (start < body.length) {
    const end = body.indexOf('\n', start);
    const line = body.slice(start, end);
    start = end + 1;
    const problem = checkLine(line, count, prev);
    if (typeof problem === 'string') {
      return { ok: false, count, head: prev, tornTail, firstBreak: { index: count, reason: problem } };
    }
    onEntry?.(problem);
    prev = problem.hash;
    count++;
  }
  return { ok: true, count, head: prev, tornTail };
}

function checkLine(line: string, index: number, prev: string): string | AuditEntry {
  let e: AuditEntry;
  try {
    e = JSON.parse(line) as AuditEntry;
  } catch {
    return 'not valid JSON';
  }
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return 'not an object';
  const extra = Object.keys(e).find((k) => !ENTRY_KEYS.has(k));
  if (extra !== undefined) return `unexpected field ${JSON.stringify(extra)} (not covered by the hash: added by hand)`;
  if (e.seq !== index)
    return `sequence number ${String(e.seq)} where ${index} was expected (entry deleted, inserted or reordered)`;
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) return 'malformed prev hash';
  if (typeof e.hash !== 'string' || !HEX64.test(e.hash)) return 'malformed hash';
  if (e.prev !== prev) return 'prev does not match the hash of the entry before it (entry removed, replaced or forked)';
  if (typeof e.ts !== 'string' || typeof e.actor !== 'string' || typeof e.action !== 'string')
    return 'missing ts, actor or action';
  if (e.target !== undefined && typeof e.target !== 'string') return 'target is not a string';
  // The hash covers the exact bytes of the line with the hash value left out, so any edit, reordering or
  // re-encoding shows; only when it does not match is the (slower) canonical form rebuilt to say which it was.
  const at = line.lastIndexOf(HASH_KEY);
  const end = at + HASH_KEY.length + 64;
  if (
    at >= 0 &&
    line.slice(at + HASH_KEY.length, end) === e.hash &&
    sha256(line.slice(0, at + HASH_KEY.length) + line.slice(end)) === e.hash
  )
    return e;
  let canonical: string;
  try {
    canonical = entryLine(e, dataJson(e.data));
  } catch {
    return 'data cannot be hashed';
  }
  if (canonical !== line) return 'entry is not in canonical form (edited by hand)';
  return 'hash does not match the entry contents (entry edited)';
}

/**
 * Compare an anchor (count and head recorded when the log had `count` entries) with the verified log.
 * The log may have grown since; it must not be shorter, and its entry at count-1 must be the anchored head.
 * `hashAt(i)` returns the hash of entry i of the verified log.
 */
export function checkAnchor(
  report: ChainReport,
  anchor: Anchor,
  hashAt: (i: number) => string | undefined,
  label: string,
): ChainBreak | undefined {
  if (anchor.count === 0) return undefined;
  if (report.count < anchor.count) {
    return {
      index: report.count,
      reason: `${label} records ${anchor.count} entries but the log has ${report.count}: entries from ${report.count} on were truncated or removed`,
    };
  }
  if (hashAt(anchor.count - 1) !== anchor.head) {
    return {
      index: anchor.count - 1,
      reason: `entry ${anchor.count - 1} does not match the head hash in ${label}: the log was rewritten`,
    };
  }
  return undefined;
}
