/**
 * The memory index cache (.loki/memory/index.bin): a restored index answers exactly as the one it was saved from
 * (also after changes, with some postings still encoded), and a cache that is corrupt, truncated, of another
 * format version, stale or ahead of the feed is never trusted: the index is rebuilt from the item files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Project } from '../mcp-server/src/project.js';
import { encodeRecord } from '../mcp-server/src/store/records.js';
import { CACHE_FORMAT, CacheFormatError, decodeCache, encodeCache } from '../mcp-server/src/memory/index-cache.js';
import { MEMORY_RECORD, itemFile, type MemoryItem } from '../mcp-server/src/memory/model.js';
import { docOfItem } from '../mcp-server/src/memory/rank.js';
import { buildItem, searchMemory } from '../mcp-server/src/memory/service.js';
import { LazyPostings, restoreText, snapshotText } from '../mcp-server/src/memory/text-snapshot.js';
import { memoryIndex, metaOf, newTextIndex, textSearch } from '../mcp-server/src/memory/warm-index.js';
import { tempProject, type TempProject } from './helpers.js';

let p: TempProject | undefined;
afterEach(() => {
  p?.cleanup();
  p = undefined;
});

const WORDS = 'redis timeout retry cache login token session database migration schema queue worker socket deploy docker lint parse json yaml upload stream mutex deadlock webpack vitest'.split(' ');

/** Deterministic items with overlapping vocabulary (some longer words for prefix and fuzzy matches). */
function items(n: number, seed = 1): MemoryItem[] {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const words = (k: number) => Array.from({ length: k }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ');
  return Array.from({ length: n }, (_, i) => {
    const layer = i % 7 === 0 ? 'skill' : 'episode';
    const { item } = buildItem(
      {
        layer,
        title: `${words(4)} ${i}`,
        body: words(20),
        ...(layer === 'episode' ? { outcome: i % 3 ? 'success' : 'failure', lessons: [words(6)] } : { steps: [words(5), words(5)] }),
        tags: [WORDS[i % WORDS.length]!],
        taskType: i % 2 ? 'bugfix' : null,
      } as Parameters<typeof buildItem>[0],
      { run: 'r-1', task: `t-${i % 5}`, at: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(), source: 'test' },
      Date.UTC(2026, 0, 1) + i * 1000,
    );
    return item;
  });
}

const QUERIES = ['redis timeout', 'retr', 'databse migraton', 'lint', 'deadlock mutex webpack', 'upload stream json', 'nothing-matches-this'];

function build(list: MemoryItem[]) {
  const ix = newTextIndex();
  ix.addAll(list.map(docOfItem));
  return ix;
}

/** toJSON with the terms in a fixed order (the radix tree may iterate them in another order). */
function normalised(ix: ReturnType<typeof newTextIndex>) {
  const js = ix.toJSON();
  return { ...js, index: [...js.index].sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
}

function answers(ix: ReturnType<typeof newTextIndex>) {
  return QUERIES.map((q) => textSearch(ix, q).map((h) => `${h.id} ${h.score.toFixed(9)}`));
}

function roundTrip(ix: ReturnType<typeof newTextIndex>, list: MemoryItem[]) {
  const buf = encodeCache({ feed: { ino: 7, offset: 99 }, meta: list.map(metaOf), text: snapshotText(ix) });
  const back = decodeCache(buf);
  return { buf, back, ix: restoreText(back.text, newTextIndex) };
}

describe('index cache format', () => {
  it('restores an index that answers exactly as the original, with the metadata and feed position', () => {
    const list = items(120);
    const ix = build(list);
    const r = roundTrip(ix, list);
    expect(r.back.feed).toEqual({ ino: 7, offset: 99 });
    expect(r.back.meta).toEqual(list.map(metaOf));
    expect(answers(r.ix)).toEqual(answers(ix));
    expect(normalised(r.ix)).toEqual(normalised(ix));
  });

  it('stays equal through adds, discards and a vacuum, and snapshots half-decoded postings correctly', async () => {
    const list = items(150, 3);
    const ix = build(list);
    const restored = roundTrip(ix, list).ix;
    const extra = items(10, 9).map((x, i) => ({ ...x, id: `${x.id.slice(0, -8)}${(0xa0000000 + i).toString(16)}` }));
    for (const x of [ix, restored]) {
      x.addAll(extra.map(docOfItem));
      for (const it of list.slice(0, 40)) x.discard(it.id);
      x.replace(docOfItem({ ...list[50]!, title: 'replaced walrus title' }));
    }
    expect(answers(restored)).toEqual(answers(ix));
    // Snapshot the restored index while most terms are still encoded: the next process must see the same.
    const third = roundTrip(restored, list).ix;
    expect(answers(third)).toEqual(answers(ix));
    expect(normalised(third)).toEqual(normalised(ix));
    await Promise.all([ix.vacuum(), third.vacuum()]);
    expect(answers(third)).toEqual(answers(ix));
  });

  it('LazyPostings behaves as a Map once touched', () => {
    const m = new LazyPostings(new Uint32Array([0, 2, 5, 9, 1, 3, 2, 1, 4, 2]));
    expect(m.size).toBe(2);
    expect([...m.keys()]).toEqual([0, 2]);
    expect([...m.get(0)!]).toEqual([
      [5, 1],
      [9, 3],
    ]);
    expect(m.encoded()).toBeUndefined();
    m.delete(2);
    expect([...m]).toHaveLength(1);
  });

  it('rejects a corrupt, truncated, older-format, foreign or malformed file with a reason', () => {
    const list = items(30);
    const { buf } = roundTrip(build(list), list);
    const reject = (b: Buffer, why: RegExp) => {
      expect(() => decodeCache(b)).toThrow(CacheFormatError);
      expect(() => decodeCache(b)).toThrow(why);
    };
    for (const at of [45, Math.floor(buf.length / 2), buf.length - 1]) {
      const bad = Buffer.from(buf);
      bad[at] = bad[at]! ^ 0x10;
      reject(bad, /checksum/);
    }
    reject(buf.subarray(0, buf.length - 4), /truncated/);
    reject(buf.subarray(0, 20), /truncated|not a memory index cache/);
    reject(Buffer.alloc(0), /not a memory index cache/);
    const older = Buffer.from(buf);
    older.writeUInt32LE(CACHE_FORMAT - 1, 8);
    reject(older, /format 1/);
    // The format 1 cache was minisearch's JSON.
    reject(Buffer.from(JSON.stringify({ kind: 'memory-index-cache', schemaVersion: 1, feed: { ino: 1, offset: 0 }, meta: [], text: {} })), /not a memory index cache/);
  });
});

/** Write items to disk as recordMemory leaves them (files, then the feed), without the per-record cost. */
function seed(root: string, list: MemoryItem[]): void {
  for (const it of list) {
    const file = path.join(root, '.loki', itemFile(it.layer, it.id));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, encodeRecord(MEMORY_RECORD, it));
  }
  fs.appendFileSync(path.join(root, '.loki/memory/changes'), list.map((x) => `${x.id}\n`).join(''));
}

describe('index cache in use', () => {
  const open = (actor: string) => new Project({ root: p!.root, env: p!.env, actor });
  const cacheFile = () => path.join(p!.root, '.loki/memory/index.bin');

  /** A project with 60 items and a saved cache; returns what a fresh index answers. */
  function withCache(): { matched: number; top: string[] } {
    p = tempProject();
    fs.mkdirSync(path.join(p.root, '.loki'), { recursive: true });
    seed(p.root, items(60));
    const proj = open('a');
    memoryIndex(proj.openStore()).refresh();
    memoryIndex(proj.openStore()).saveCache();
    const r = searchMemory(proj, { query: 'redis timeout', limit: 20, scope: 'project' });
    proj.close();
    return { matched: r.matched, top: r.results.map((x) => x.id) };
  }

  function searchFresh(): { lastLoad: string | undefined; matched: number; top: string[] } {
    const proj = open('b');
    const r = searchMemory(proj, { query: 'redis timeout', limit: 20, scope: 'project' });
    const lastLoad = memoryIndex(proj.openStore()).lastLoad;
    proj.close();
    return { lastLoad, matched: r.matched, top: r.results.map((x) => x.id) };
  }

  it('loads a valid cache and catches up with items another process recorded since', () => {
    const before = withCache();
    expect(searchFresh()).toEqual({ lastLoad: 'cache', ...before });
    const later = items(3, 77).map((x) => ({ ...x, title: `redis timeout late ${x.title}` }));
    seed(p!.root, later);
    const after = searchFresh();
    expect(after.lastLoad).toBe('cache');
    expect(after.matched).toBe(before.matched + 3);
    expect(after.top).toEqual(expect.arrayContaining(later.map((x) => x.id)));
  });

  it.each([
    ['corrupt (a flipped byte)', (f: string) => {
      const b = fs.readFileSync(f);
      const at = Math.floor(b.length * 0.7);
      b[at] = b[at]! ^ 0xff;
      fs.writeFileSync(f, b);
    }],
    ['truncated', (f: string) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))],
    ['empty', (f: string) => fs.writeFileSync(f, '')],
    ['from an older format version', (f: string) => {
      const b = fs.readFileSync(f);
      b.writeUInt32LE(1, 8);
      fs.writeFileSync(f, b);
    }],
    ['ahead of the feed (the feed was rewritten shorter)', (f: string) => {
      const feed = path.join(path.dirname(f), 'changes');
      // Same inode, fewer bytes: the cache claims a position the feed no longer has.
      const keep = fs.readFileSync(feed, 'utf8').split('\n').slice(0, 10).join('\n').length + 1;
      fs.truncateSync(feed, keep);
    }],
    ['for another feed (replaced by a new file)', (f: string) => {
      const feed = path.join(path.dirname(f), 'changes');
      fs.copyFileSync(feed, `${feed}.copy`);
      fs.renameSync(`${feed}.copy`, feed);
    }],
  ])('ignores a cache %s and rebuilds from the item files', (_name, damage) => {
    const before = withCache();
    damage(cacheFile());
    expect(searchFresh()).toEqual({ lastLoad: 'files', ...before });
  });

  it('ignores and removes a cache of format 1 (index.json) and writes the new one', () => {
    const before = withCache();
    fs.rmSync(cacheFile());
    const old = path.join(p!.root, '.loki/memory/index.json');
    fs.writeFileSync(old, JSON.stringify({ kind: 'memory-index-cache', schemaVersion: 1, feed: { ino: 0, offset: 0 }, meta: [], text: {} }));
    expect(searchFresh()).toEqual({ lastLoad: 'files', ...before });
    const proj = open('c');
    memoryIndex(proj.openStore()).refresh();
    memoryIndex(proj.openStore()).saveCache();
    proj.close();
    expect(fs.existsSync(old)).toBe(false);
    expect(searchFresh()).toEqual({ lastLoad: 'cache', ...before });
  });
});
