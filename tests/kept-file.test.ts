/**
 * KeptFile (store/kept-file.ts): a descriptor kept open between writes is used only while its name still leads
 * to the same inode; a replaced, hard-linked or symlinked name is opened afresh (and refused where the opener
 * refuses), a descriptor let go while an asynchronous use holds it is closed only after that use, and once
 * closed nothing is kept.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsyncAsync, openDirectory, openForAppend, writeAll } from '../mcp-server/src/store/fsx.js';
import { KeptFile } from '../mcp-server/src/store/kept-file.js';
import { SafeDir } from '../mcp-server/src/store/paths.js';

const roots: string[] = [];
function tmpBase(): { root: string; dir: SafeDir } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-kept-'));
  roots.push(root);
  return { root, dir: SafeDir.open(root) };
}
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

const appendOpener = (dir: SafeDir, rel: string) => openForAppend(dir, rel).fd;

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

describe('KeptFile', () => {
  it('creates the file, keeps one descriptor across writes, and reports the size the name has now', () => {
    const { root, dir } = tmpBase();
    const log = new KeptFile(dir, 'a/log.txt', 'file', appendOpener);
    const first = log.get();
    writeAll(first.fd, Buffer.from('one\n'));
    const second = log.get();
    expect(second.fd).toBe(first.fd);
    expect(second.size).toBe(4);
    // Another writer appends through its own descriptor: the size comes from the name, not from our writes.
    fs.appendFileSync(path.join(root, 'a/log.txt'), 'two\n');
    expect(log.get().size).toBe(8);
    log.close();
    expect(isOpen(first.fd)).toBe(false);
  });

  it('a name that now leads to another file is opened afresh; the old file gets nothing more', () => {
    const { root, dir } = tmpBase();
    const log = new KeptFile(dir, 'log.txt', 'file', appendOpener);
    writeAll(log.get().fd, Buffer.from('old\n'));
    fs.renameSync(path.join(root, 'log.txt'), path.join(root, 'archived.txt'));
    fs.writeFileSync(path.join(root, 'log.txt'), 'fresh\n');
    const now = log.get();
    expect(now.size).toBe(6);
    writeAll(now.fd, Buffer.from('new\n'));
    expect(fs.readFileSync(path.join(root, 'log.txt'), 'utf8')).toBe('fresh\nnew\n');
    expect(fs.readFileSync(path.join(root, 'archived.txt'), 'utf8')).toBe('old\n');
    // Removed outright: created again.
    fs.rmSync(path.join(root, 'log.txt'));
    writeAll(log.get().fd, Buffer.from('again\n'));
    expect(fs.readFileSync(path.join(root, 'log.txt'), 'utf8')).toBe('again\n');
    log.close();
  });

  it('refuses a name that became a symbolic link or gained a hard link, writing nothing through it', () => {
    const { root, dir } = tmpBase();
    const outside = tmpBase().root;
    const log = new KeptFile(dir, 'log.txt', 'file', appendOpener);
    writeAll(log.get().fd, Buffer.from('x\n'));
    fs.linkSync(path.join(root, 'log.txt'), path.join(outside, 'shared.txt'));
    expect(() => log.get()).toThrow(/hard links/);
    fs.rmSync(path.join(outside, 'shared.txt'));
    fs.rmSync(path.join(root, 'log.txt'));
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret\n');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'log.txt'));
    expect(() => log.get()).toThrow(expect.objectContaining({ code: 'PATH_SYMLINK' }));
    expect(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    log.close();
  });

  it('a descriptor let go while an asynchronous use holds it is closed when that use ends', async () => {
    const { root, dir } = tmpBase();
    const log = new KeptFile(dir, 'log.txt', 'file', appendOpener);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = -1;
    const use = log.use(async (t) => {
      held = t.fd;
      await gate;
      await fsyncAsync(t.fd);
      return t.fd;
    });
    // Meanwhile the name is replaced and another write opens the new file.
    fs.renameSync(path.join(root, 'log.txt'), path.join(root, 'old.txt'));
    const fresh = log.get();
    expect(fresh.fd).not.toBe(held);
    expect(isOpen(held)).toBe(true);
    release();
    expect(await use).toBe(held);
    expect(isOpen(held)).toBe(false);
    expect(isOpen(fresh.fd)).toBe(true);
    log.close();
  });

  it('a failed use lets the descriptor go, and the next use opens the name again', async () => {
    const { dir } = tmpBase();
    const log = new KeptFile(dir, 'log.txt', 'file', appendOpener);
    const first = log.get().fd;
    await expect(log.use(() => Promise.reject(new Error('disk full')))).rejects.toThrow('disk full');
    expect(isOpen(first)).toBe(false);
    expect(isOpen(log.get().fd)).toBe(true);
    log.close();
  });

  it('after close keeps nothing: each use opens the name with its checks and closes its descriptor when done', async () => {
    const { root, dir } = tmpBase();
    const outside = tmpBase().root;
    const log = new KeptFile(dir, 'log.txt', 'file', appendOpener);
    const kept = log.get().fd;
    log.close();
    expect(isOpen(kept)).toBe(false);
    // A batch still settling at shutdown: a synchronous use right after get(), then the descriptor is closed.
    const late = log.get();
    writeAll(late.fd, Buffer.from('late\n'));
    expect(isOpen(late.fd)).toBe(true);
    await Promise.resolve();
    expect(isOpen(late.fd)).toBe(false);
    let used = -1;
    await log.use(async (t) => {
      used = t.fd;
      await fsyncAsync(t.fd);
      writeAll(t.fd, Buffer.from('later\n'));
    });
    expect(isOpen(used)).toBe(false);
    expect(fs.readFileSync(path.join(root, 'log.txt'), 'utf8')).toBe('late\nlater\n');
    // The opener's checks still apply.
    fs.rmSync(path.join(root, 'log.txt'));
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'secret\n');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'log.txt'));
    expect(() => log.get()).toThrow(expect.objectContaining({ code: 'PATH_SYMLINK' }));
    await expect(log.use(() => undefined)).rejects.toMatchObject({ code: 'PATH_SYMLINK' });
    expect(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
  });

  it('keeps a directory open for fsync, and follows the name when the directory is replaced', async () => {
    const { root, dir } = tmpBase();
    fs.mkdirSync(path.join(root, 'queue/tasks'), { recursive: true });
    const tasks = new KeptFile(dir, 'queue/tasks', 'dir', openDirectory);
    const fd = await tasks.use(async (t) => {
      await fsyncAsync(t.fd);
      return t.fd;
    });
    expect(tasks.get().fd).toBe(fd);
    fs.renameSync(path.join(root, 'queue'), path.join(root, 'archived'));
    expect(() => tasks.get()).toThrow(expect.objectContaining({ code: 'PATH_MISSING' }));
    fs.mkdirSync(path.join(root, 'queue/tasks'), { recursive: true });
    const again = tasks.get();
    expect(fs.fstatSync(again.fd).ino).toBe(fs.statSync(path.join(root, 'queue/tasks')).ino);
    tasks.close();
  });
});
