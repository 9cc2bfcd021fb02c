/**
 * The memory index cache file, `.loki/memory/index.bin`: what a new process needs to search without reading the
 * 10,000 item files (the items' metadata, the BM25 index as numbers, and the change-feed position they cover).
 *
 *   bytes 0-7    magic "LOKIMIDX"
 *   8-11         format version (u32, little-endian)
 *   12-15        head length H in bytes
 *   16-19        number of u32 words W that follow the head
 *   20-39        SHA-1 of everything from byte 40 to the end
 *   40...        the head: UTF-8 JSON, padded with spaces to a multiple of 4 bytes
 *   then         W u32 words in this machine's byte order (recorded in the head): see text-snapshot.ts
 *
 * Decoding is pure and says why a file is unusable (wrong magic, older or newer version, truncated, checksum,
 * malformed head, other byte order); the caller ignores such a cache and rebuilds from the item files. Whether
 * the cache is current (the feed position) is the caller's check. Metadata travels in columns (one array per
 * field), which JSON parses several times faster than one object per item.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { ITEM_ID, layerOfId, OUTCOMES, type Outcome } from './model.js';
import type { TextSnapshot, TextSnapshotHead } from './text-snapshot.js';
import type { MemoryMeta } from './warm-index.js';

export const CACHE_MAGIC = 'LOKIMIDX';
export const CACHE_FORMAT = 2;
const FIXED = 40;

export interface FeedPosition {
  ino: number;
  offset: number;
}

export interface CacheContent {
  feed: FeedPosition;
  meta: MemoryMeta[];
  text: TextSnapshot;
}

interface MetaColumns {
  ids: string[];
  titles: string[];
  tags: string[][];
  phases: (string | null)[];
  taskTypes: (string | null)[];
  outcomes: (Outcome | null)[];
  confidences: (number | null)[];
  flags: string[][];
  sources: string[][];
  runs: (string | null)[];
  tasks: (string | null)[];
  ats: string[];
  origins: string[];
}

interface Head {
  kind: 'memory-index-cache';
  endian: 'LE' | 'BE';
  feed: FeedPosition;
  meta: MetaColumns;
  text: TextSnapshotHead;
}

export class CacheFormatError extends Error {}

function columns(meta: MemoryMeta[]): MetaColumns {
  const col = <K>(f: (m: MemoryMeta) => K): K[] => meta.map(f);
  return {
    ids: col((m) => m.id),
    titles: col((m) => m.title),
    tags: col((m) => m.tags),
    phases: col((m) => m.phase),
    taskTypes: col((m) => m.taskType),
    outcomes: col((m) => m.outcome),
    confidences: col((m) => m.confidence),
    flags: col((m) => m.flags),
    sources: col((m) => m.sources),
    runs: col((m) => m.provenance.run),
    tasks: col((m) => m.provenance.task),
    ats: col((m) => m.provenance.at),
    origins: col((m) => m.provenance.source),
  };
}

function rows(c: MetaColumns): MemoryMeta[] {
  const n = c.ids.length;
  for (const [name, v] of Object.entries(c)) if (!Array.isArray(v) || v.length !== n) throw new CacheFormatError(`metadata column ${name} is malformed`);
  const out: MemoryMeta[] = new Array<MemoryMeta>(n);
  for (let i = 0; i < n; i++) {
    const id = c.ids[i]!;
    const layer = typeof id === 'string' && ITEM_ID.test(id) ? layerOfId(id) : undefined;
    const outcome = c.outcomes[i]!;
    if (!layer || typeof c.titles[i] !== 'string' || typeof c.ats[i] !== 'string' || (outcome !== null && !OUTCOMES.includes(outcome))) {
      throw new CacheFormatError(`metadata row ${i} is malformed`);
    }
    out[i] = {
      id,
      layer,
      title: c.titles[i]!,
      tags: c.tags[i]!,
      phase: c.phases[i]!,
      taskType: c.taskTypes[i]!,
      outcome,
      confidence: c.confidences[i]!,
      flags: c.flags[i]!,
      sources: c.sources[i]!,
      provenance: { run: c.runs[i]!, task: c.tasks[i]!, at: c.ats[i]!, source: c.origins[i]! },
    };
  }
  return out;
}

const ENDIAN = os.endianness();

export function encodeCache(content: CacheContent): Buffer {
  const head: Head = { kind: 'memory-index-cache', endian: ENDIAN, feed: content.feed, meta: columns(content.meta), text: content.text.head };
  let json = Buffer.from(JSON.stringify(head), 'utf8');
  const pad = (4 - (json.length % 4)) % 4;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const words = content.text.data;
  const data = Buffer.from(words.buffer, words.byteOffset, words.byteLength);
  const fixed = Buffer.alloc(FIXED);
  fixed.write(CACHE_MAGIC, 0, 'latin1');
  fixed.writeUInt32LE(CACHE_FORMAT, 8);
  fixed.writeUInt32LE(json.length, 12);
  fixed.writeUInt32LE(words.length, 16);
  crypto.createHash('sha1').update(json).update(data).digest().copy(fixed, 20);
  return Buffer.concat([fixed, json, data]);
}

/** The content of a cache file; throws CacheFormatError saying why the file cannot be used. */
export function decodeCache(buf: Buffer): CacheContent {
  if (buf.length < FIXED || buf.toString('latin1', 0, 8) !== CACHE_MAGIC) throw new CacheFormatError('not a memory index cache');
  const version = buf.readUInt32LE(8);
  if (version !== CACHE_FORMAT) throw new CacheFormatError(`format ${version}, this version reads ${CACHE_FORMAT}`);
  const headBytes = buf.readUInt32LE(12);
  const words = buf.readUInt32LE(16);
  if (headBytes % 4 !== 0 || buf.length !== FIXED + headBytes + words * 4) throw new CacheFormatError(`length ${buf.length} does not match its header (truncated?)`);
  const sum = crypto.createHash('sha1').update(buf.subarray(FIXED)).digest();
  if (!sum.equals(buf.subarray(20, FIXED))) throw new CacheFormatError('checksum mismatch');
  let head: Head;
  try {
    head = JSON.parse(buf.toString('utf8', FIXED, FIXED + headBytes)) as Head;
  } catch (err) {
    throw new CacheFormatError(`head is not JSON: ${(err as Error).message}`);
  }
  if (head?.kind !== 'memory-index-cache' || !head.feed || !head.meta || !head.text || !Array.isArray(head.text.docIds) || !Array.isArray(head.text.terms)) {
    throw new CacheFormatError('head is malformed');
  }
  if (head.endian !== ENDIAN) throw new CacheFormatError(`written on a ${head.endian} machine`);
  if (typeof head.feed.ino !== 'number' || !Number.isSafeInteger(head.feed.offset) || head.feed.offset < 0) throw new CacheFormatError('feed position is malformed');
  const at = buf.byteOffset + FIXED + headBytes;
  // A Uint32Array needs an aligned start; a Buffer from the pool may not give one.
  const data = at % 4 === 0 ? new Uint32Array(buf.buffer, at, words) : new Uint32Array(Uint8Array.prototype.slice.call(buf, FIXED + headBytes).buffer);
  return { feed: { ino: head.feed.ino, offset: head.feed.offset }, meta: rows(head.meta), text: { head: head.text, data } };
}
