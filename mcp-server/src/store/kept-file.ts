/**
 * A file written again and again (an append-only log, an anchor rewritten in place, a directory fsynced after
 * every batch of renames) kept open between writes, instead of being opened, checked and closed each time.
 *
 * Every use still resolves the name through the validator (SafeDir.resolve: no symbolic link, no other file
 * system, the right kind of entry), and the kept descriptor is used only while that name still leads to the same
 * inode (and, for a file, that inode has a single link). Otherwise it is let go and the name opened afresh by
 * `open`, with all of its checks. An inode cannot be reused while a descriptor holds it, so "same device and
 * inode" means "the very file that was opened and checked".
 *
 * A descriptor let go while an asynchronous use (an fsync on the thread pool) still has it is closed when the
 * last such use ends, never under it.
 *
 * Once closed (at shutdown, while a last batch may still be settling), and always on Windows (where a file held
 * open cannot be replaced by a rename, nor its folder moved), nothing is kept: each use opens the name with its
 * checks and closes the descriptor when the use ends.
 */
import fs from 'node:fs';
import type { SafeDir } from './paths.js';

export interface KeptTarget {
  fd: number;
  /** The file's size now (from the lstat that matched the name to a kept descriptor, or the fstat of a new one). */
  size: number;
  ino: number;
}

/** Descriptors are kept between uses except on Windows (see above). */
const KEEPS = process.platform !== 'win32';

export class KeptFile {
  private kept: { fd: number; dev: number; ino: number } | undefined;
  /** Asynchronous uses under way, and the descriptors let go meanwhile (closed when they end). */
  private users = 0;
  private readonly retired: number[] = [];
  private closed = false;

  /**
   * `open` opens `rel` under `dir` with its checks and returns the descriptor (a file: for appending or writing in
   * place; a directory: for fsync). `kind` is what the name must be; a missing file is created by `open`.
   */
  constructor(
    private readonly dir: SafeDir,
    private readonly rel: string,
    private readonly kind: 'file' | 'dir',
    private readonly open: (dir: SafeDir, rel: string) => number,
  ) {}

  /** The descriptor for what is at the name now, for a use that ends before the caller next awaits. */
  get(): KeptTarget {
    const { target, own } = this.acquire();
    // Not kept: closed once the synchronous use that asked for it is over.
    if (own) queueMicrotask(() => closeQuietly(target.fd));
    return target;
  }

  /** Run `fn` with the descriptor, which stays open until `fn` has settled; a failure lets the descriptor go. */
  async use<T>(fn: (target: KeptTarget) => Promise<T> | T): Promise<T> {
    const { target, own } = this.acquire();
    this.users++;
    try {
      return await fn(target);
    } catch (err) {
      if (!own) this.letGo();
      throw err;
    } finally {
      if (own) closeQuietly(target.fd);
      if (--this.users === 0) for (const fd of this.retired.splice(0)) closeQuietly(fd);
    }
  }

  /** Let the kept descriptor go (after a failed write): the next use opens the name afresh. */
  letGo(): void {
    const k = this.kept;
    this.kept = undefined;
    if (!k) return;
    if (this.users > 0) this.retired.push(k.fd);
    else closeQuietly(k.fd);
  }

  /** Let the descriptor go and keep none from now on (shutdown): later uses open and close their own. */
  close(): void {
    this.closed = true;
    this.letGo();
  }

  /** The kept descriptor if the name still leads to it, else a new one (kept, unless closed); `own`: not kept. */
  private acquire(): { target: KeptTarget; own: boolean } {
    if (this.closed || !KEEPS) return { target: this.openNow(), own: true };
    const file = this.kind === 'file';
    const { stat } = this.dir.resolve(this.rel, { leaf: this.kind, allowMissing: file, createParents: file });
    const k = this.kept;
    if (k && stat && stat.ino === k.ino && stat.dev === k.dev && (!file || stat.nlink === 1)) return { target: { fd: k.fd, size: stat.size, ino: k.ino }, own: false };
    this.letGo();
    const target = this.openNow();
    this.kept = { fd: target.fd, dev: target.dev, ino: target.ino };
    return { target, own: false };
  }

  private openNow(): KeptTarget & { dev: number } {
    const fd = this.open(this.dir, this.rel);
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return { fd, size: st.size, ino: st.ino, dev: st.dev };
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
}
