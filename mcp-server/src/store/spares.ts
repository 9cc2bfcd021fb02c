/**
 * Spare inodes for atomic rewrites in one directory (used by writeFilesAtomic for the task queue).
 *
 * An atomic replace normally creates a temp file and renames it over the old version, which frees the old inode.
 * On some file systems allocating an inode costs ten times the rest of a small durable write (bench/NOTES.md:
 * 0.7 ms of kernel time per create on the bench VM, against 0.03 ms for a rename). So the version a rename
 * displaces is kept under a private hidden name (hard-linked just before the rename) and rewritten in place for a
 * later write: no inode is allocated or freed in the steady state. A spare is never visible under a record's
 * name while it is written; it is renamed into place only after its new content is fsynced.
 *
 * A reader that opened a displaced version just before the rename still holds that inode, so spares are reused
 * oldest first and only once a quarter of the pool is waiting (a reader has long finished by then); readers of
 * recycled files also check that what they read did not change under them (readFileIfExists `stable`).
 *
 * Names: `.spare-<host digest>-<pid>-<random>-<n>.tmp` (hidden, and a temp file for checkpoints and sweeps). A
 * process removes its spares when it exits; those of a process of this host that was killed are removed by the
 * next full load of the directory (sweepDeadSpares).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HOST_TAG, sweepDeadProcessFiles } from './host-files.js';

const SPARE_PREFIX = '.spare-';
const SPARE_SUFFIX = '.tmp';
/** A spare may be a version a reader opened a moment ago: reuse one only while more than this many wait. */
const REUSE_AFTER = 16;

/** Where the displaced spares stood when a directory fsync began (SparePool.syncPoint). */
export interface SyncPoint {
  generation: number;
  count: number;
}

const livePools = new Set<SparePool>();
let exitHookSet = false;

export class SparePool {
  private readonly free: string[] = [];
  /** Given back, but the rename that displaced them may not be durable yet. */
  private readonly displaced: string[] = [];
  private count = 0;
  private generation = 0;
  private readonly prefix = `${SPARE_PREFIX}${HOST_TAG}-${process.pid}-${crypto.randomBytes(3).toString('hex')}-`;

  /** `dir`: the absolute path of the directory whose files are rewritten. */
  constructor(
    readonly dir: string,
    private readonly max = 64,
  ) {
    livePools.add(this);
    if (!exitHookSet) {
      exitHookSet = true;
      process.once('exit', removeLiveSpares);
    }
  }

  /** The oldest spare, once enough are waiting; undefined means "create a temp file as usual". */
  take(): string | undefined {
    return this.free.length > REUSE_AFTER ? this.free.shift() : undefined;
  }

  /** A name for keeping the version about to be displaced, or undefined when the pool is full. */
  nameForNext(): string | undefined {
    return this.free.length + this.displaced.length < this.max ? path.join(this.dir, `${this.prefix}${this.count++}${SPARE_SUFFIX}`) : undefined;
  }

  /**
   * `name` now holds a displaced version nobody else links. It is reused only after the rename that displaced it
   * is durable (markSynced): until the directory is fsynced, a power loss could bring the old name back onto
   * this inode, and a rewrite would then put another record under that name.
   */
  give(name: string): void {
    this.displaced.push(name);
  }

  /** Before a directory fsync: which displaced spares it will make safe to reuse (pass it to markSynced). */
  syncPoint(): SyncPoint {
    return { generation: this.generation, count: this.displaced.length };
  }

  /** The directory fsync that started at `point` has completed: those spares may be reused. */
  markSynced(point: SyncPoint): void {
    // After a clear() the spares counted at `point` are gone; the ones displaced since are not covered.
    if (point.generation === this.generation) this.free.push(...this.displaced.splice(0, point.count));
  }

  /** Forget a spare that could not be used, and remove its name. */
  discard(name: string): void {
    fs.rmSync(name, { force: true });
  }

  /** Remove every spare (the directory is about to move, or the process ends). */
  clear(): void {
    this.generation++;
    for (const name of [...this.free.splice(0), ...this.displaced.splice(0)]) fs.rmSync(name, { force: true });
  }

  close(): void {
    this.clear();
    livePools.delete(this);
  }
}

function removeLiveSpares(): void {
  for (const pool of livePools) pool.clear();
}

/** The pid in the name of a spare made on this host, or undefined (not a spare, or another host's). */
export function sparePid(name: string): number | undefined {
  if (!name.startsWith(SPARE_PREFIX) || !name.endsWith(SPARE_SUFFIX)) return undefined;
  const [host, pidText] = name.slice(SPARE_PREFIX.length).split('-');
  const pid = Number(pidText);
  return host === HOST_TAG && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Remove the spares that processes no longer running left in `dir` (absolute). `alive` tells whether a pid runs
 * on this host. A spare is a whole older version of some record, never a record itself, so removing one loses
 * nothing.
 */
export function sweepDeadSpares(dir: string, names: readonly string[], alive: (pid: number) => boolean): number {
  return sweepDeadProcessFiles(dir, names, sparePid, alive);
}
