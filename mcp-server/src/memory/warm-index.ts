/**
 * The warm index: every memory item of a project in memory plus a BM25 index (minisearch), kept by the server
 * process across calls and brought up to date cheaply before each use.
 *
 * Writers (this process or any other) append the id of every item they write to `.loki/memory/changes`, under
 * the memory lock and after the item file is durable. A reader remembers the feed's inode and the byte offset it
 * has read up to; `refresh()` stats the feed and reads only the new lines, then re-reads just those items. A
 * feed that shrank or was replaced (another inode) means the history was rewritten: rebuild from the item files.
 * The index holds each item's metadata (title, tags, layer, provenance...), not its text: full items are read
 * from their files by loki_memory_get.
 *
 * First use: building the BM25 index from 10,000 item files costs about a second (reading the files and
 * tokenising), so the index is also saved as a cache, `.loki/memory/index.bin` (index-cache.ts: the metadata,
 * the index as numbers (text-snapshot.ts) and the feed position it covers, checksummed), written after a
 * rebuild and again when the feed has grown by a tenth. A new process loads it (postings are decoded term by
 * term as queries touch them) and catches up from the feed position it records; a cache that is missing,
 * truncated, corrupt, of another format version, or for another feed inode or a later feed position is ignored
 * and rebuilt. The cache is never the source of truth.
 *
 * minisearch is loaded on first use, so `initialize` does not pay for it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type MiniSearchType from 'minisearch';
import { readFileIfExists, readTail, removeFile, writeFileAtomic } from '../store/fsx.js';
import { PathError, isNotFound, type SafeDir } from '../store/paths.js';
import { decodeRecord, NewerSchemaError } from '../store/records.js';
import type { Store } from '../store/store.js';
import { CHANGES_FILE, ITEM_ID, LAYER_DIR, LAYERS, MEMORY_RECORD, itemFile, layerOfId, type Layer, type MemoryItem, type Outcome, type Provenance } from './model.js';
import { CacheFormatError, decodeCache, encodeCache, type CacheContent } from './index-cache.js';
import { FIELD_BOOST, SEARCH_FIELDS, docOfItem, processTerm, type SearchDoc } from './rank.js';
import { restoreText, snapshotText } from './text-snapshot.js';

declare const require: ((id: string) => unknown) | undefined;
type MiniSearchCtor = typeof MiniSearchType;
let MiniSearchClass: MiniSearchCtor | undefined;

function miniSearch(): MiniSearchCtor {
  if (!MiniSearchClass) MiniSearchClass = (typeof require === 'function' ? require('minisearch') : createRequire(import.meta.url)('minisearch')) as MiniSearchCtor;
  return MiniSearchClass;
}

const TEXT_OPTIONS = {
  fields: [...SEARCH_FIELDS],
  storeFields: [],
  processTerm,
  autoVacuum: { minDirtCount: 200, minDirtFactor: 0.2, batchSize: 1000, batchWait: 10 },
};

export function newTextIndex(): MiniSearchType<SearchDoc> {
  const MiniSearch = miniSearch();
  return new MiniSearch<SearchDoc>(TEXT_OPTIONS);
}

/** What the index keeps of an item: enough to filter, rank and list it without reading its file. */
export interface MemoryMeta {
  id: string;
  layer: Layer;
  title: string;
  tags: string[];
  phase: string | null;
  taskType: string | null;
  outcome: Outcome | null;
  confidence: number | null;
  flags: string[];
  sources: string[];
  provenance: Provenance;
}

export function metaOf(item: MemoryItem): MemoryMeta {
  return {
    id: item.id,
    layer: item.layer,
    title: item.title.length > 160 ? `${item.title.slice(0, 159)}…` : item.title,
    tags: item.tags,
    phase: item.phase,
    taskType: item.taskType,
    outcome: item.outcome,
    confidence: item.confidence,
    flags: item.flags,
    sources: item.sources,
    provenance: item.provenance,
  };
}

export const INDEX_CACHE = 'memory/index.bin';
/** The cache of format 1 (minisearch's JSON); removed when a new cache is written. */
const OLD_INDEX_CACHE = 'memory/index.json';
const CACHE_MIN_ITEMS = 300;
const MAX_CACHE_BYTES = 512 * 1024 * 1024;

export interface TextHit {
  id: string;
  score: number;
}

/** BM25 (minisearch's BM25+) with field boosts, prefix matching and light fuzziness for longer terms. */
export function textSearch(index: MiniSearchType<SearchDoc>, query: string, filter?: (id: string) => boolean): TextHit[] {
  return index
    .search(query, {
      boost: FIELD_BOOST,
      prefix: (term) => term.length >= 4,
      fuzzy: (term) => (term.length >= 6 ? 0.15 : false),
      maxFuzzy: 2,
      ...(filter ? { filter: (r) => filter(r.id as string) } : {}),
    })
    .map((r) => ({ id: r.id as string, score: r.score }));
}

export interface RefreshReport {
  rebuilt: boolean;
  /** Items read in this refresh. */
  read: number;
  /** Files found invalid in this refresh (moved to quarantine) or unreadable. */
  problems: string[];
}

const MAX_ITEM_FILE_BYTES = 256 * 1024;

export class MemoryIndex {
  private text: MiniSearchType<SearchDoc> | undefined;
  private readonly items = new Map<string, MemoryMeta>();
  private feed = { ino: -1, offset: 0 };
  /** Items read since the cache was last written (a new cache is written when this passes a tenth). */
  private sinceCache = 0;
  private cacheScheduled = false;
  /** Where the last (re)load came from, for the bench and the tests. */
  lastLoad: 'cache' | 'files' | undefined;
  private readonly layerDirs = new Map<Layer, SafeDir>();
  /** The last problems seen (kept for a few calls so `list`/`status` can show them). */
  readonly recentProblems: string[] = [];

  constructor(private readonly store: Store) {}

  get size(): number {
    return this.items.size;
  }

  /** Bring the index up to date with the files; cheap when nothing changed (one stat). */
  refresh(): RefreshReport {
    const st = this.feedStat();
    if (!this.text && st && this.loadCache(st)) return this.catchUp();
    if (!this.text || (st && st.ino !== this.feed.ino) || (st ? st.size : 0) < this.feed.offset || (!st && this.feed.ino !== -1 && this.feed.ino !== 0)) {
      return this.rebuild();
    }
    if (!st || st.size === this.feed.offset) return { rebuilt: false, read: 0, problems: [] };
    return this.catchUp();
  }

  private feedStat(): { ino: number; size: number } | undefined {
    try {
      const { stat } = this.store.loki.resolve(CHANGES_FILE, { leaf: 'file' });
      return stat ? { ino: stat.ino, size: stat.size } : undefined;
    } catch (err) {
      if (err instanceof PathError && err.code === 'PATH_MISSING') return undefined;
      throw err;
    }
  }

  private layerDir(layer: Layer): SafeDir | undefined {
    let dir = this.layerDirs.get(layer);
    if (dir) return dir;
    try {
      dir = this.store.loki.child(LAYER_DIR[layer], false);
    } catch (err) {
      if (err instanceof PathError && err.code === 'PATH_MISSING') return undefined;
      throw err;
    }
    this.layerDirs.set(layer, dir);
    return dir;
  }

  /** List and read every item file. */
  rebuild(): RefreshReport {
    const st = this.feedStat();
    const problems: string[] = [];
    const text = newTextIndex();
    this.items.clear();
    this.layerDirs.clear();
    const docs: SearchDoc[] = [];
    for (const layer of LAYERS) {
      const dir = this.layerDir(layer);
      if (!dir) continue;
      for (const name of fs.readdirSync(dir.root)) {
        if (!name.endsWith('.json') || name.startsWith('.')) continue;
        const id = name.slice(0, -5);
        if (!ITEM_ID.test(id)) continue;
        const item = this.readItem(dir, layer, id, problems);
        if (!item) continue;
        this.items.set(id, metaOf(item));
        docs.push(docOfItem(item));
      }
    }
    text.addAll(docs);
    this.text = text;
    this.feed = { ino: st?.ino ?? 0, offset: st?.size ?? 0 };
    this.lastLoad = 'files';
    this.note(problems);
    this.sinceCache = docs.length;
    this.maybeSaveCache();
    return { rebuilt: true, read: docs.length, problems };
  }

  private catchUp(): RefreshReport {
    const tail = readTail(this.store.loki, CHANGES_FILE, this.feed.offset);
    if (!tail || tail.ino !== this.feed.ino) return this.rebuild();
    const end = tail.data.lastIndexOf(0x0a);
    if (end < 0) return { rebuilt: false, read: 0, problems: [] };
    const ids = new Set(
      tail.data
        .subarray(0, end)
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => ITEM_ID.test(l)),
    );
    const problems: string[] = [];
    let read = 0;
    for (const id of ids) {
      const layer = layerOfId(id)!;
      const dir = this.layerDir(layer);
      const item = dir ? this.readItem(dir, layer, id, problems) : undefined;
      this.remove(id);
      if (item) {
        this.items.set(id, metaOf(item));
        this.text!.add(docOfItem(item));
        read++;
      }
    }
    this.feed.offset += end + 1;
    this.note(problems);
    this.sinceCache += read;
    this.maybeSaveCache();
    return { rebuilt: false, read, problems };
  }

  private readItem(dir: SafeDir, layer: Layer, id: string, problems: string[]): MemoryItem | undefined {
    const rel = itemFile(layer, id);
    let buf: Buffer | undefined;
    try {
      buf = readFileIfExists(dir, `${id}.json`, MAX_ITEM_FILE_BYTES);
    } catch (err) {
      problems.push(`.loki/${rel} could not be read: ${(err as Error).message}`);
      return undefined;
    }
    if (!buf) return undefined;
    let decoded;
    try {
      decoded = decodeRecord(MEMORY_RECORD, buf.toString('utf8'), rel);
    } catch (err) {
      if (err instanceof NewerSchemaError) {
        problems.push(err.message);
        return undefined;
      }
      throw err;
    }
    let problem = 'problem' in decoded ? decoded.problem : undefined;
    if (!problem && 'value' in decoded && (decoded.value.id !== id || decoded.value.layer !== layer)) problem = `its id/layer do not match the file name`;
    if (problem) {
      const q = this.store.records.quarantine(rel, problem);
      problems.push(`.loki/${rel} was invalid (${problem}) and was moved to ${q.movedTo ? `.loki/${q.movedTo}` : 'nowhere (move failed)'}`);
      return undefined;
    }
    return (decoded as { value: MemoryItem }).value;
  }

  private remove(id: string): void {
    if (this.items.delete(id) && this.text!.has(id)) this.text!.discard(id);
  }

  private note(problems: string[]): void {
    if (problems.length === 0) return;
    this.recentProblems.push(...problems);
    if (this.recentProblems.length > 10) this.recentProblems.splice(0, this.recentProblems.length - 10);
  }

  /** Put an item this process has just written (and appended to the feed) into the index without re-reading it. */
  upsertOwn(item: MemoryItem, feedSizeAfter: number, feedIno: number, feedSizeBefore: number): void {
    if (!this.text) return; // not built yet: the first refresh reads everything
    // Only skip the feed when nobody else appended since we last read it; otherwise the next refresh catches up.
    if (feedIno === this.feed.ino && feedSizeBefore === this.feed.offset) {
      this.remove(item.id);
      this.items.set(item.id, metaOf(item));
      this.text.add(docOfItem(item));
      this.feed.offset = feedSizeAfter;
      this.sinceCache++;
      this.maybeSaveCache();
    }
  }

  get(id: string): MemoryMeta | undefined {
    return this.items.get(id);
  }

  all(): MemoryMeta[] {
    return [...this.items.values()];
  }

  /** The full item, read from its file (invalid files are quarantined and reported). */
  readFull(id: string, problems: string[] = []): MemoryItem | undefined {
    const layer = layerOfId(id);
    const dir = layer && this.layerDir(layer);
    if (!layer || !dir) return undefined;
    const item = this.readItem(dir, layer, id, problems);
    if (!item && this.items.has(id)) this.remove(id);
    return item;
  }

  // ---- the cache ----

  private loadCache(st: { ino: number; size: number }): boolean {
    let cache: CacheContent;
    let text: MiniSearchType<SearchDoc>;
    try {
      const buf = readFileIfExists(this.store.loki, INDEX_CACHE, MAX_CACHE_BYTES);
      if (!buf) return false;
      cache = decodeCache(buf);
      // Written for another feed (replaced or rewritten since), or ahead of it: not this history.
      if (cache.feed.ino !== st.ino || cache.feed.offset > st.size) return false;
      text = restoreText(cache.text, newTextIndex);
    } catch (err) {
      if (!(err instanceof CacheFormatError)) process.emitWarning(`loki: ignoring .loki/${INDEX_CACHE}: ${(err as Error).message}`, { code: 'LOKI_MEMORY_CACHE' });
      return false;
    }
    this.items.clear();
    for (const m of cache.meta) this.items.set(m.id, m);
    this.text = text;
    this.feed = { ...cache.feed };
    this.sinceCache = 0;
    this.lastLoad = 'cache';
    return true;
  }

  /** Save the cache after this call's answer is sent, when there is enough new to be worth it. */
  private maybeSaveCache(): void {
    if (this.cacheScheduled || this.items.size < CACHE_MIN_ITEMS || this.sinceCache < Math.max(CACHE_MIN_ITEMS, this.items.size / 10)) return;
    this.cacheScheduled = true;
    setImmediate(() => {
      this.cacheScheduled = false;
      try {
        this.saveCache();
      } catch (err) {
        if (isNotFound(err)) return; // the project went away (tests, or .loki/ removed) before the save ran
        process.emitWarning(`loki: could not write .loki/${INDEX_CACHE}: ${(err as Error).message}`, { code: 'LOKI_MEMORY_CACHE' });
      }
    });
  }

  saveCache(): void {
    if (!this.text) return;
    const file = encodeCache({ feed: { ...this.feed }, meta: [...this.items.values()], text: snapshotText(this.text) });
    // A cache: atomic (never half-written) but not fsync'd; losing it only costs a rebuild.
    writeFileAtomic(this.store.loki, INDEX_CACHE, file, { durable: false });
    try {
      removeFile(this.store.loki, OLD_INDEX_CACHE, false);
    } catch {
      /* not a plain file: leave it; it is never read */
    }
    this.sinceCache = 0;
  }

  search(query: string, filter?: (item: MemoryMeta) => boolean): TextHit[] {
    if (!this.text) this.refresh();
    return textSearch(this.text!, query, filter ? (id) => filter(this.items.get(id)!) : undefined);
  }
}

const indexes = new WeakMap<Store, MemoryIndex>();

/** The warm index of a store (one per store object, so one per server process and project). */
export function memoryIndex(store: Store): MemoryIndex {
  let idx = indexes.get(store);
  if (!idx) {
    idx = new MemoryIndex(store);
    indexes.set(store, idx);
  }
  return idx;
}
