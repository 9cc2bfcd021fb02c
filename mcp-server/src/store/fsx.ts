/**
 * File operations under a SafeDir. Nothing here follows a symlink, opens a special file, or leaves a
 * half-written file behind: reads use O_NOFOLLOW plus an inode check, replacements are temp + fsync + rename +
 * directory fsync, and creates are exclusive.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FileTooLargeError, PathError } from '../errors.js';
import { type SafeDir, isNotFound, printable } from './paths.js';
import { faultPoint } from './fault.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const O_DIRECTORY = fs.constants.O_DIRECTORY ?? 0;

const DEFAULT_MAX_READ_BYTES = 8 * 1024 * 1024;

export interface ReadOptions {
  /**
   * Refuse a file with more than one name (PATH_HARD_LINK): a hard link is the same file under another name,
   * perhaps outside the project, written by whoever can write there. Checked on the opened file itself.
   */
  singleLink?: boolean;
}

/** Read a regular file under `dir`, or return undefined when it does not exist. */
export function readFileIfExists(
  dir: SafeDir,
  rel: string,
  maxBytes = DEFAULT_MAX_READ_BYTES,
  opts: ReadOptions = {},
): Buffer | undefined {
  return withOpenFile(dir, rel, (fd, st) => {
    if (opts.singleLink && st.nlink > 1)
      throw new PathError(
        'PATH_HARD_LINK',
        `"${printable(rel)}" has ${st.nlink} hard links (other names for the same file, perhaps outside the project)`,
      );
    if (st.size > maxBytes) throw new FileTooLargeError(`"${printable(rel)}" is larger than ${maxBytes} bytes`);
    return readAll(fd, st.size, maxBytes, rel);
  });
}

class ReplacedWhileOpeningError extends PathError {
  constructor(rel: string) {
    super('PATH_NOT_FILE', `"${printable(rel)}" was replaced while being opened`);
  }
}

/**
 * Open a regular file under `dir` for reading and run `use` on it; undefined when it does not exist. The opened
 * inode must be the one validated (no symlink, no special file, still inside `dir`). Another process may replace
 * the file (temp + rename) between the check and the open; that is a legitimate new version, so look again.
 */
function withOpenFile<T>(dir: SafeDir, rel: string, use: (fd: number, st: fs.Stats) => T): T | undefined {
  for (let attempt = 1; ; attempt++) {
    try {
      return openOnce(dir, rel, use);
    } catch (err) {
      if (!(err instanceof ReplacedWhileOpeningError) || attempt >= 5) throw err;
    }
  }
}

function openOnce<T>(dir: SafeDir, rel: string, use: (fd: number, st: fs.Stats) => T): T | undefined {
  let resolved;
  try {
    resolved = dir.resolve(rel, { leaf: 'file' });
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return undefined;
    throw err;
  }
  let fd: number;
  try {
    fd = fs.openSync(resolved.absolute, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new PathError('PATH_SYMLINK', `"${printable(rel)}" became a symbolic link while being opened`);
    }
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new PathError('PATH_NOT_FILE', `"${printable(rel)}" is not a regular file`);
    if (st.ino !== resolved.stat!.ino || st.dev !== resolved.stat!.dev) throw new ReplacedWhileOpeningError(rel);
    dir.assertDescriptorInside(fd, rel);
    return use(fd, st);
  } finally {
    fs.closeSync(fd);
  }
}

function readAll(fd: number, sizeHint: number, maxBytes: number, rel: string): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  const chunkSize = Math.max(4096, Math.min(sizeHint + 1, maxBytes + 1));
  for (;;) {
    const buf = Buffer.allocUnsafe(chunkSize);
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    total += n;
    if (total > maxBytes) throw new FileTooLargeError(`"${printable(rel)}" is larger than ${maxBytes} bytes`);
    chunks.push(n === buf.length ? buf : buf.subarray(0, n));
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

export interface WriteOptions {
  /** fsync the file and its directory (default true). */
  durable?: boolean;
  mode?: number;
}

/**
 * Replace (or create) a file atomically: random temp name opened exclusively in the same directory, write,
 * fsync, rename over the target (a rename replaces a link, it never writes through one), fsync the directory.
 */
export function writeFileAtomic(dir: SafeDir, rel: string, data: string | Buffer, opts: WriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const { absolute } = dir.resolve(rel, { leaf: 'file', allowMissing: true, createParents: true });
  const parent = path.dirname(absolute);
  const temp = path.join(parent, `.${path.basename(absolute)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, opts.mode ?? 0o600);
  let renamed = false;
  try {
    assertCreatedInside(dir, fd, rel);
    writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    faultPoint('atomic-after-temp-write');
    if (durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    faultPoint('atomic-before-rename');
    fs.renameSync(temp, absolute);
    renamed = true;
    faultPoint('atomic-after-rename');
    if (durable) fsyncDir(parent);
  } catch (err) {
    if (!renamed) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already closed */
      }
      try {
        fs.unlinkSync(temp);
      } catch {
        /* never created or already gone */
      }
    }
    throw err;
  }
}

/**
 * Create a new file, failing with EEXIST when anything (a file, a directory, a link, a dangling link) is
 * already at that name. Returns false instead of throwing on EEXIST.
 */
export function createExclusive(dir: SafeDir, rel: string, data: string | Buffer, opts: WriteOptions = {}): boolean {
  const { absolute } = dir.resolve(rel, { leaf: 'file', allowMissing: true, createParents: true });
  let fd: number;
  try {
    fd = fs.openSync(absolute, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, opts.mode ?? 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    assertCreatedInside(dir, fd, rel);
    writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    if (opts.durable ?? true) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (opts.durable ?? true) fsyncDir(path.dirname(absolute));
  return true;
}

/**
 * O_NOFOLLOW only guards the last component: a directory above it can be swapped for a symlink between
 * `resolve` and the open. After an exclusive create, make sure the new file is inside `dir`; if it is not,
 * remove the file we just made (best effort) and refuse, so no data is ever written outside.
 */
function assertCreatedInside(dir: SafeDir, fd: number, rel: string): void {
  try {
    dir.assertDescriptorInside(fd, rel);
  } catch (err) {
    try {
      const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (fs.lstatSync(real).ino === fs.fstatSync(fd).ino) fs.unlinkSync(real);
    } catch {
      /* already gone */
    }
    throw err;
  }
}

function writeAll(fd: number, buf: Buffer, position: number | null = null): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off, position === null ? null : position + off);
    off += n;
  }
}

export function fsyncDir(dirPath: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dirPath, O_RDONLY | O_DIRECTORY);
  } catch {
    return; // Platforms that cannot open directories (Windows) have no directory fsync.
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    /* some file systems refuse fsync on directories */
  } finally {
    fs.closeSync(fd);
  }
}

/** Remove a file under `dir`; returns false when it was not there. */
export function removeFile(dir: SafeDir, rel: string, durable = true): boolean {
  let resolved;
  try {
    resolved = dir.resolve(rel, { leaf: 'file' });
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return false;
    throw err;
  }
  try {
    fs.unlinkSync(resolved.absolute);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  if (durable) fsyncDir(path.dirname(resolved.absolute));
  return true;
}

/** Atomically move a file inside `dir` (both ends validated). Returns false when the source is gone. */
export function moveFile(dir: SafeDir, fromRel: string, toRel: string, durable = true): boolean {
  return moveEntry(dir, fromRel, toRel, 'file', durable);
}

function moveEntry(dir: SafeDir, fromRel: string, toRel: string, leaf: 'file', durable: boolean): boolean {
  let from;
  try {
    from = dir.resolve(fromRel, { leaf });
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return false;
    throw err;
  }
  const to = dir.resolve(toRel, { leaf, allowMissing: true, createParents: true });
  try {
    fs.renameSync(from.absolute, to.absolute);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  if (durable) {
    fsyncDir(path.dirname(to.absolute));
    if (path.dirname(to.absolute) !== path.dirname(from.absolute)) fsyncDir(path.dirname(from.absolute));
  }
  return true;
}

/** Names of the entries of a directory under `dir` ([] when it does not exist). */
export function listNames(dir: SafeDir, rel: string): string[] {
  let resolved;
  try {
    resolved = dir.resolve(rel, { leaf: 'dir' });
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return [];
    throw err;
  }
  return fs.readdirSync(resolved.absolute);
}

/** Remove temp files older than `maxAgeMs` that a crash left behind in a directory under `dir`. */
export function sweepOrphanTemps(dir: SafeDir, rel: string, maxAgeMs: number, now = Date.now()): number {
  let removed = 0;
  for (const name of listNames(dir, rel)) {
    if (!name.startsWith('.') || !name.endsWith('.tmp')) continue;
    const abs = path.join(dir.root, rel, name);
    try {
      const st = fs.lstatSync(abs);
      if (st.isFile() && now - st.mtimeMs > maxAgeMs) {
        fs.unlinkSync(abs);
        removed++;
      }
    } catch {
      /* raced with another sweeper */
    }
  }
  return removed;
}
