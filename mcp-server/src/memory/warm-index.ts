/**
 * The warm index: every memory item of a project in memory plus a BM25 index (minisearch), kept by the server
 * process across calls and brought up to date cheaply before each use.
 *
 * Writers (this process or any other) append the id of every item they write to `.loki/memory/changes`, under
 * the memory lock and after the item file is durable. A reader remembers the feed's inode and the byte offset it
 * has read up to; `refresh()` stats the feed and reads only the new lines, then re-reads just those items. A
 * feed that shrank or was replaced (another inode) means the history was rewritten: rebuild from the item files.
 * The first use lists and reads every item file (the "first query" figure in bench/RESULTS.md).
 *
 * minisearch is loaded on first use, so `initialize` does not pay for it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type MiniSearchType from 'minisearch';
import { readFileIfExists, readTail } from '../store/fsx.js';
import { PathError, type SafeDir } from '../store/paths.js';
import { decodeRecord, NewerSchemaError } from '../store/records.js';
import type { Store } from '../store/store.js';
import { CHANGES_FILE, ITEM_ID, LAYER_DIR, LAYERS, MEMORY_RECORD, itemFile, layerOfId, type Layer, type MemoryItem } from './model.js';
import { FIELD_BOOST, SEARCH_FIELDS, docOfItem, processTerm, type SearchDoc } from './rank.js';

declare const require: ((id: string) => unknown) | undefined;
type MiniSearchCtor = typeof MiniSearchType;
let MiniSearchClass: MiniSearchCtor | undefined;

function miniSearch(): MiniSearchCtor {
  if (!MiniSearchClass) MiniSearchClass = (typeof require === 'function' ? require('minisearch') : createRequire(import.meta.url)('minisearch')) as MiniSearchCtor;
  return MiniSearchClass;
}

export function newTextIndex(): MiniSearchType<SearchDoc> {
  const MiniSearch = miniSearch();
  return new MiniSearch<SearchDoc>({
    fields: [...SEARCH_FIELDS],
    storeFields: [],
    processTerm,
    autoVacuum: { minDirtCount: 200, minDirtFactor: 0.2, batchSize: 1000, batchWait: 10 },
  });
}

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
  private readonly items = new Map<string, MemoryItem>();
  private feed = { ino: -1, offset: 0 };
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
        this.items.set(id, item);
        docs.push(docOfItem(item));
      }
    }
    text.addAll(docs);
    this.text = text;
    this.feed = { ino: st?.ino ?? 0, offset: st?.size ?? 0 };
    this.note(problems);
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
        this.items.set(id, item);
        this.text!.add(docOfItem(item));
        read++;
      }
    }
    this.feed.offset += end + 1;
    this.note(problems);
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
      this.items.set(item.id, item);
      this.text.add(docOfItem(item));
      this.feed.offset = feedSizeAfter;
    }
  }

  get(id: string): MemoryItem | undefined {
    return this.items.get(id);
  }

  all(): MemoryItem[] {
    return [...this.items.values()];
  }

  search(query: string, filter?: (item: MemoryItem) => boolean): TextHit[] {
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
