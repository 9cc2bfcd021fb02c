/**
 * Recycled inodes for atomic rewrites (store/spares.ts with writeFilesAtomic): the files always hold their latest
 * content, the steady state allocates no inodes, spares stay hidden and bounded, a spare that is not a private
 * regular file is never written through, stable reads, and the sweep of a dead process's spares.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileIfExists, writeFilesAtomic } from '../mcp-server/src/store/fsx.js';
import { HOST_TAG } from '../mcp-server/src/store/host-files.js';
import { processAlive } from '../mcp-server/src/store/lock.js';
import { SafeDir } from '../mcp-server/src/store/paths.js';
import { SparePool, sparePid, sweepDeadSpares } from '../mcp-server/src/store/spares.js';

const roots: string[] = [];
const pools: SparePool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function setup(): { base: SafeDir; dir: string; pool: SparePool; outside: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-spares-'));
  roots.push(root);
  const dir = path.join(root, 'base', 'tasks');
  fs.mkdirSync(dir, { recursive: true });
  const pool = new SparePool(dir);
  pools.push(pool);
  return { base: SafeDir.open(path.join(root, 'base')), dir, pool, outside: path.join(root, 'outside.txt') };
}

const names = (dir: string) => fs.readdirSync(dir).sort();
const spares = (dir: string) => names(dir).filter((n) => n.startsWith('.spare-'));
const deadPid = () => {
  for (;;) {
    const r = spawnSync('true');
    if (r.pid && !processAlive(r.pid)) return r.pid;
  }
};

describe('writeFilesAtomic with a spare pool', () => {
  it('200 rounds over 8 files: latest content every time, a bounded set of inodes, spares hidden and capped', async () => {
    const { base, dir, pool } = setup();
    const inodes = new Set<number>();
    for (let round = 0; round < 200; round++) {
      const files = Array.from({ length: 8 }, (_, i) => ({ rel: `tasks/t${i}.json`, data: `{"id":"t${i}","round":${round},"pad":"${'x'.repeat((round * 7 + i) % 300)}"}\n` }));
      await writeFilesAtomic(base, files, pool);
      // The caller's directory fsync makes the displaced versions reusable.
      pool.markSynced(pool.syncPoint());
      for (let i = 0; i < 8; i++) {
        const file = path.join(dir, `t${i}.json`);
        expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ id: `t${i}`, round });
        const st = fs.statSync(file);
        expect(st.nlink).toBe(1);
        inodes.add(st.ino);
      }
      expect(spares(dir).length).toBeLessThanOrEqual(64);
    }
    // Without recycling there would be 1,600 distinct inodes; with it, the 8 files and the pool's spares.
    expect(inodes.size).toBeLessThanOrEqual(8 + 64 + 8);
    expect(names(dir).filter((n) => !n.startsWith('.'))).toEqual(Array.from({ length: 8 }, (_, i) => `t${i}.json`).sort());
    for (const s of spares(dir)) {
      expect(sparePid(s)).toBe(process.pid);
      expect(s.endsWith('.tmp')).toBe(true);
    }
    pool.close();
    expect(spares(dir)).toEqual([]);
  });

  it('a displaced version is not reused before the directory fsync that made its rename durable', async () => {
    const { base, dir, pool } = setup();
    const inodes = new Set<number>();
    for (let round = 0; round < 40; round++) {
      await writeFilesAtomic(base, [{ rel: 'tasks/b.json', data: `{"round":${round}}` }], pool);
      inodes.add(fs.statSync(path.join(dir, 'b.json')).ino);
    }
    // Never synced: every write needed a new inode, and the spares wait (up to the pool's size).
    expect(inodes.size).toBe(40);
    expect(spares(dir)).toHaveLength(39);
    pool.markSynced(pool.syncPoint());
    const before = new Set(spares(dir).map((n) => fs.statSync(path.join(dir, n)).ino));
    await writeFilesAtomic(base, [{ rel: 'tasks/b.json', data: '{"round":40}' }], pool);
    expect(before.has(fs.statSync(path.join(dir, 'b.json')).ino)).toBe(true);
  });

  it('an fsync that began before the pool was cleared releases none of the spares displaced after it', async () => {
    const { base, dir, pool } = setup();
    for (let round = 0; round < 20; round++) await writeFilesAtomic(base, [{ rel: 'tasks/c.json', data: `{"round":${round}}` }], pool);
    const point = pool.syncPoint();
    pool.clear();
    expect(spares(dir)).toEqual([]);
    for (let round = 20; round < 40; round++) await writeFilesAtomic(base, [{ rel: 'tasks/c.json', data: `{"round":${round}}` }], pool);
    const waiting = new Set(spares(dir).map((n) => fs.statSync(path.join(dir, n)).ino));
    pool.markSynced(point);
    await writeFilesAtomic(base, [{ rel: 'tasks/c.json', data: '{"round":40}' }], pool);
    // Not reused: the file got a new inode, none of the waiting ones.
    expect(waiting.has(fs.statSync(path.join(dir, 'c.json')).ino)).toBe(false);
  });

  it('a spare swapped for a hard link to an outside file, or a symlink, is never written through', async () => {
    const { base, dir, pool, outside } = setup();
    const write = async (round: number) => {
      await writeFilesAtomic(base, [{ rel: 'tasks/a.json', data: `{"round":${round}}` }], pool);
      pool.markSynced(pool.syncPoint());
    };
    for (let round = 0; round < 30; round++) await write(round);
    const waiting = spares(dir);
    expect(waiting.length).toBeGreaterThan(16);
    fs.writeFileSync(outside, 'outside, untouched');
    // The oldest spares (the next to be reused) become a hard link and a symlink to the outside file.
    fs.rmSync(path.join(dir, waiting[0]!));
    fs.linkSync(outside, path.join(dir, waiting[0]!));
    fs.rmSync(path.join(dir, waiting[1]!));
    fs.symlinkSync(outside, path.join(dir, waiting[1]!));
    for (let round = 30; round < 40; round++) await write(round);
    expect(fs.readFileSync(outside, 'utf8')).toBe('outside, untouched');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'a.json'), 'utf8'))).toEqual({ round: 39 });
    expect(fs.lstatSync(path.join(dir, 'a.json')).isFile()).toBe(true);
  });

  it('a rewritten file read with `stable` is always a whole version', async () => {
    const { base, pool } = setup();
    for (let round = 0; round < 300; round++) {
      await writeFilesAtomic(base, [{ rel: 'tasks/r.json', data: JSON.stringify({ round, pad: 'y'.repeat(round % 97) }) }], pool);
      pool.markSynced(pool.syncPoint());
      const text = readFileIfExists(base, 'tasks/r.json', undefined, true)!.toString('utf8');
      expect(JSON.parse(text)).toMatchObject({ round });
    }
  });
});

describe('sweepDeadSpares', () => {
  it("removes only the spares of processes that are gone, never a live process's or a record", () => {
    const { dir } = setup();
    const dead = deadPid();
    const other = HOST_TAG === '00000000' ? '11111111' : '00000000';
    const planted = [`.spare-${HOST_TAG}-${dead}-abc123-0.tmp`, `.spare-${HOST_TAG}-${process.pid}-def456-0.tmp`, `.spare-${HOST_TAG}-1-000000-0.tmp`, `.spare-${other}-${dead}-abc123-0.tmp`, 't1.json', '.t1.json.abcdef.tmp'];
    for (const n of planted) fs.writeFileSync(path.join(dir, n), '{}');
    expect(sweepDeadSpares(dir, names(dir), processAlive)).toBe(1);
    expect(names(dir)).toEqual(planted.filter((n) => !n.startsWith(`.spare-${HOST_TAG}-${dead}-`)).sort());
  });

  it("parses the pid out of this host's spare names and nothing else", () => {
    expect(sparePid(`.spare-${HOST_TAG}-1234-abcdef-7.tmp`)).toBe(1234);
    for (const n of ['t1.json', '.spare-.tmp', `.spare-${HOST_TAG}-x-abc-1.tmp`, `.spare-${HOST_TAG}-12-abc-1.json`, '.spare-1234-abcdef-7.tmp', `spare-${HOST_TAG}-12-abc-1.tmp`]) expect(sparePid(n), n).toBeUndefined();
  });
});
