/**
 * A minisearch index as flat numbers, and back, without rebuilding it: the postings of a term are decoded only
 * when a search (or a change) first touches that term.
 *
 * minisearch's own `toJSON`/`loadJS` round-trip makes one object per posting and then one Map entry per posting
 * (about 580,000 for 10,000 memories: some 250 ms of parsing, rebuilding and garbage collection). Here the
 * postings stay in one Uint32Array and each term gets a `LazyPostings` map that decodes its slice on first
 * use, so a new process pays for the terms its queries touch, not for the whole vocabulary.
 *
 * This reads and sets minisearch's internal fields (`_index`, `_documentIds`, `_idToShortId`, `_fieldLength`,
 * `_avgFieldLength`, ...). package.json pins minisearch to an exact version; `restoreText` checks the shape it
 * expects and throws otherwise (the caller then rebuilds from the item files), and tests/memory-cache.test.ts
 * checks a restored index answers exactly as the original.
 *
 * Layout of the numbers (`data`), in order:
 *   docShortIds[docs]                      minisearch's short id of each document (aligned with docIds)
 *   fieldLengths[docs * fields]            each document's field lengths; HOLE for a field it did not have
 *   termStarts[terms + 1]                  where each term's postings begin in `data` (the last is the end)
 *   postings                               per term, per field: fieldId, n, n doc short ids, n frequencies
 * Terms are in the order minisearch iterates them; docIds and terms travel as strings beside the numbers.
 */
import type MiniSearchType from 'minisearch';

type Postings = Map<number, Map<number, number>>;

/** The internal fields this module reads and writes (minisearch 7.2). */
interface Internals {
  _index: { set(term: string, data: Postings): unknown; [Symbol.iterator](): Iterator<[string, Postings]>; size: number };
  _documentCount: number;
  _nextId: number;
  _documentIds: Map<number, string>;
  _idToShortId: Map<string, number>;
  _fieldIds: Record<string, number>;
  _fieldLength: Map<number, number[]>;
  _avgFieldLength: number[];
  _storedFields: Map<number, unknown>;
  _dirtCount: number;
}

/** The scalars and strings of a snapshot (JSON-friendly); the numbers are in `data`. */
export interface TextSnapshotHead {
  documentCount: number;
  nextId: number;
  fieldIds: Record<string, number>;
  averageFieldLength: number[];
  dirtCount: number;
  docIds: string[];
  terms: string[];
}

export interface TextSnapshot {
  head: TextSnapshotHead;
  data: Uint32Array;
}

const HOLE = 0xffffffff;
const MAX_U32 = 0xfffffffe;

/** A term's postings (field id -> document short id -> term frequency), decoded from `src` on first use. */
export class LazyPostings extends Map<number, Map<number, number>> {
  private src: Uint32Array | undefined;

  constructor(src: Uint32Array) {
    super();
    this.src = src;
  }

  /** The still-encoded postings (for a new snapshot), or undefined once decoded. */
  encoded(): Uint32Array | undefined {
    return this.src;
  }

  private load(): void {
    const s = this.src;
    if (!s) return;
    this.src = undefined;
    for (let i = 0; i < s.length; ) {
      const field = s[i]!;
      const n = s[i + 1]!;
      const docs = new Map<number, number>();
      for (let j = 0; j < n; j++) docs.set(s[i + 2 + j]!, s[i + 2 + n + j]!);
      super.set(field, docs);
      i += 2 + 2 * n;
    }
  }

  override get size(): number {
    this.load();
    return super.size;
  }
  override get(key: number): Map<number, number> | undefined {
    this.load();
    return super.get(key);
  }
  override has(key: number): boolean {
    this.load();
    return super.has(key);
  }
  override set(key: number, value: Map<number, number>): this {
    this.load();
    return super.set(key, value);
  }
  override delete(key: number): boolean {
    this.load();
    return super.delete(key);
  }
  override clear(): void {
    this.src = undefined;
    super.clear();
  }
  override forEach(fn: (value: Map<number, number>, key: number, map: Map<number, Map<number, number>>) => void, thisArg?: unknown): void {
    this.load();
    super.forEach(fn, thisArg);
  }
  override keys(): MapIterator<number> {
    this.load();
    return super.keys();
  }
  override values(): MapIterator<Map<number, number>> {
    this.load();
    return super.values();
  }
  override entries(): MapIterator<[number, Map<number, number>]> {
    this.load();
    return super.entries();
  }
  override [Symbol.iterator](): MapIterator<[number, Map<number, number>]> {
    return this.entries();
  }
}

function internals(index: unknown): Internals {
  const x = index as Internals;
  const maps = [x._documentIds, x._idToShortId, x._fieldLength, x._storedFields];
  if (!maps.every((m) => m instanceof Map) || typeof x._index?.set !== 'function' || !Array.isArray(x._avgFieldLength) || typeof x._fieldIds !== 'object') {
    throw new Error('minisearch internals are not the expected shape (was minisearch upgraded?)');
  }
  return x;
}

/** A growing Uint32Array. */
class Words {
  private buf = new Uint32Array(1 << 16);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (this.length + n > size) size *= 2;
    const next = new Uint32Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  push(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }
  append(a: Uint32Array): void {
    this.room(a.length);
    this.buf.set(a, this.length);
    this.length += a.length;
  }
  done(): Uint32Array {
    return this.buf.subarray(0, this.length);
  }
}

const u32 = (v: number, what: string): number => {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U32) throw new Error(`${what} ${v} does not fit the snapshot`);
  return v;
};

/** Flatten an index (as it is now, including postings of discarded documents not yet vacuumed). */
export function snapshotText<T>(index: MiniSearchType<T>): TextSnapshot {
  const x = internals(index);
  const fields = Object.keys(x._fieldIds).length;
  const docIds: string[] = [];
  const out = new Words();
  for (const [short, id] of x._documentIds) {
    docIds.push(id);
    out.push(u32(short, 'document short id'));
  }
  if (x._fieldLength.size !== docIds.length) throw new Error('field lengths and documents disagree');
  for (const [short] of x._documentIds) {
    const lengths = x._fieldLength.get(short);
    if (!lengths) throw new Error(`no field lengths for document ${short}`);
    for (let f = 0; f < fields; f++) {
      const len = lengths[f];
      out.push(len === undefined ? HOLE : u32(len, 'field length'));
    }
  }
  const terms: string[] = [];
  const startsAt = out.length;
  for (let i = 0; i <= x._index.size; i++) out.push(0);
  const starts: number[] = [];
  for (const [term, data] of x._index) {
    terms.push(term);
    starts.push(out.length);
    const raw = data instanceof LazyPostings ? data.encoded() : undefined;
    if (raw) {
      out.append(raw);
      continue;
    }
    for (const [field, docs] of data) {
      out.push(u32(field, 'field id'));
      out.push(docs.size);
      for (const d of docs.keys()) out.push(u32(d, 'document short id'));
      for (const n of docs.values()) out.push(u32(n, 'term frequency'));
    }
  }
  starts.push(out.length);
  const data = out.done();
  if (starts.length !== terms.length + 1 || terms.length !== x._index.size) throw new Error('the term count changed while writing');
  data.set(starts, startsAt);
  return {
    head: { documentCount: x._documentCount, nextId: x._nextId, fieldIds: { ...x._fieldIds }, averageFieldLength: [...x._avgFieldLength], dirtCount: x._dirtCount, docIds, terms },
    data,
  };
}

/**
 * An index equal to the one snapshotted, built with `create` (a new, empty index with the same options).
 * Throws on any inconsistency between the head and the numbers.
 */
export function restoreText<T>(snap: TextSnapshot, create: () => MiniSearchType<T>): MiniSearchType<T> {
  const { head, data } = snap;
  const index = create();
  const x = internals(index);
  const fields = Object.keys(x._fieldIds).length;
  const sameFields = Object.keys(head.fieldIds).length === fields && Object.entries(head.fieldIds).every(([k, v]) => x._fieldIds[k] === v);
  if (!sameFields || head.averageFieldLength.length > fields) throw new Error('the snapshot was made with other fields');
  const docs = head.docIds.length;
  const termsAt = docs + docs * fields;
  const postingsAt = termsAt + head.terms.length + 1;
  if (data.length < postingsAt || data[termsAt] !== postingsAt || data[postingsAt - 1] !== data.length) throw new Error('the snapshot numbers do not match its head');
  for (let i = 0; i < docs; i++) {
    const short = data[i]!;
    const id = head.docIds[i]!;
    x._documentIds.set(short, id);
    x._idToShortId.set(id, short);
    const lengths: number[] = [];
    for (let f = 0; f < fields; f++) {
      const len = data[docs + i * fields + f]!;
      if (len !== HOLE) lengths[f] = len;
    }
    x._fieldLength.set(short, lengths);
  }
  if (x._documentIds.size !== docs || x._idToShortId.size !== docs) throw new Error('duplicate documents in the snapshot');
  for (let t = 0; t < head.terms.length; t++) {
    const from = data[termsAt + t]!;
    const to = data[termsAt + t + 1]!;
    if (to < from || to > data.length) throw new Error('the snapshot term table is inconsistent');
    x._index.set(head.terms[t]!, new LazyPostings(data.subarray(from, to)));
  }
  x._documentCount = head.documentCount;
  x._nextId = head.nextId;
  x._avgFieldLength = [...head.averageFieldLength];
  x._dirtCount = head.dirtCount;
  return index;
}
