/**
 * Full disks, read-only file systems and missing permissions, told as what they are (errors.ts DiskError: the
 * path and the fix, one line), never as an "unexpected error" with a stack. An error from `fs` carries its code
 * and path. SQLite says "disk I/O error" or "unable to open database file" for the same causes, so for its
 * errors the folder is looked at instead (can this user write there, is any space left) and the cause found
 * there is named; when none is found the error stays what it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiskError, type DiskErrorCode } from '../errors.js';

/** Less free space than this on the disk holding `.loki/` is a full disk: the next transaction may not fit. */
export const FULL_BELOW_BYTES = 1024 * 1024;

const DISK_CODES: ReadonlySet<string> = new Set<DiskErrorCode>(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);

/**
 * SQLite's primary result codes that a full, read-only or forbidden disk can cause: SQLITE_PERM (3),
 * SQLITE_READONLY (8), SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_CANTOPEN (14).
 */
const SQLITE_DISK_CODES: ReadonlySet<number> = new Set([3, 8, 10, 13, 14]);
const SQLITE_FULL = 13;

/** The database files SQLite writes in `.loki/`: each must be writable, not only the folder. */
const DATABASE_FILES = ['loki.db', 'loki.db-wal', 'loki.db-shm'];

/**
 * `err` as a DiskError when a full disk, a read-only file system or a permission is its cause; `lokiDir` (the
 * project's `.loki/`) is where SQLite's errors are looked into, and what a write without a path (to an open file)
 * was about. `context` says what could not be done.
 */
export function asDiskError(err: unknown, lokiDir?: string, context?: string): DiskError | undefined {
  if (err instanceof DiskError) return err;
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; path?: unknown; dest?: unknown; errcode?: unknown };
  if (typeof e.code === 'string' && DISK_CODES.has(e.code)) {
    const code = e.code as DiskErrorCode;
    const named = typeof e.path === 'string' ? e.path : typeof e.dest === 'string' ? e.dest : undefined;
    // A refused permission without a path is not about a file (a signal to another user's process).
    const where = named ?? (code === 'EACCES' || code === 'EPERM' ? undefined : lokiDir);
    return where ? new DiskError(code, where, context) : undefined;
  }
  if (typeof e.errcode === 'number' && lokiDir && SQLITE_DISK_CODES.has(e.errcode & 0xff)) {
    const found = diskCause(lokiDir, context);
    if (found) return found;
    // SQLite's own word for a full disk, even when some space was freed since.
    if ((e.errcode & 0xff) === SQLITE_FULL) return new DiskError('ENOSPC', lokiDir, context);
  }
  return undefined;
}

/**
 * What keeps this user from writing in `lokiDir` (the folder, then each database file in it that exists), or a
 * disk with less than FULL_BELOW_BYTES free; undefined when nothing does. Asked, not guessed: access(2) answers
 * EROFS on a read-only file system and EACCES where the permissions refuse, for root as for anyone.
 */
export function diskCause(lokiDir: string, context?: string): DiskError | undefined {
  for (const target of [lokiDir, ...DATABASE_FILES.map((f) => path.join(lokiDir, f))]) {
    try {
      fs.accessSync(target, fs.constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code && DISK_CODES.has(code)) return new DiskError(code as DiskErrorCode, target, context);
    }
  }
  const free = freeBytes(lokiDir);
  return free !== undefined && free < FULL_BELOW_BYTES ? new DiskError('ENOSPC', lokiDir, context) : undefined;
}

/** Bytes free for this user on the disk holding `dir` (undefined when the system cannot say). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}
