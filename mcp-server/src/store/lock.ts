/**
 * Locks for read-modify-write: an in-process FIFO mutex per name (the SDK runs tool calls concurrently), then a
 * cross-process lock file under `.loki/locks/`, made atomically (a hard link of this process's ticket, see below;
 * an O_EXCL create where the file system has no hard links).
 *
 * Why not proper-lockfile: after a SIGKILL it needs at least 2.7 s (10.5 s by default) to see the lock as stale,
 * its stale reclaim can let two waiters through (moxystudio/node-proper-lockfile#121) and its default
 * onCompromised throws (research/reliability-perf.md §A2.2). Here a lock records its owner's pid and host, so a
 * holder that died on this host is detected at once; an age limit covers pid reuse. A stale lock is removed only
 * by whoever holds the short-lived `<name>.reclaim` lock and has re-read the lock file under it, so a waiter can
 * never remove a lock that someone else has just taken.
 *
 * A lock file is taken by hard-linking this process's ticket for that name (store/lock-ticket.ts: a hidden file
 * holding the owner record) to the lock's name: `link` fails with EEXIST exactly as an O_EXCL create does, but
 * allocates no inode.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkId, type SafeDir } from './paths.js';
import { faultPoint } from './fault.js';
import { Ticket, sweepDeadTickets } from './lock-ticket.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const HOST = os.hostname();
/** link() errors that mean "this file system has no hard links". */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

export interface LockOptions {
  /** A lock older than this is stale even if its owner pid looks alive (pid reuse, another host). */
  staleMs: number;
  /** Give up waiting after this long. */
  timeoutMs: number;
}

export const DEFAULT_LOCK_OPTIONS: LockOptions = { staleMs: 10_000, timeoutMs: 15_000 };
/** A waiter that has tried this many times asks for a turn (`<name>.wanted` beside the lock, see `wanted`). */
const ASK_AFTER_ATTEMPTS = 3;

export class LockTimeoutError extends Error {
  constructor(
    name: string,
    readonly owner: LockOwner | undefined,
    waitedMs: number,
  ) {
    const who = owner ? `pid ${owner.pid} on ${owner.host} since ${new Date(owner.at).toISOString()}` : 'an unknown holder';
    super(
      `timed out after ${waitedMs} ms waiting for the "${name}" lock held by ${who}; ` +
        'if no loki process is still running, run `loki doctor` to see and clear it',
    );
    this.name = 'LockTimeoutError';
  }
}

export interface LockOwner {
  pid: number;
  host: string;
  token: string;
  at: number;
}

/**
 * This process's lock tokens: a random prefix and a counter (unique without drawing random bytes each time). The
 * prefix is 64 bits: tokens alone tell one holder from another when a lock is reclaimed or an ask removed.
 */
const TOKEN_PREFIX = crypto.randomBytes(8).toString('hex');
let tokenCounter = 0;

function newToken(): string {
  tokenCounter = (tokenCounter + 1) % 0x1_0000_0000;
  return TOKEN_PREFIX + tokenCounter.toString(16).padStart(8, '0');
}

/** Serialises async critical sections in one process, first come first served. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    try {
      await previous;
      return await fn();
    } finally {
      release();
    }
  }
}

export class LockManager {
  private readonly mutexes = new Map<string, Mutex>();
  private readonly held = new Map<string, LockOwner>();
  private readonly options: LockOptions;
  private readonly tickets = new Map<string, Ticket>();
  private swept = false;
  /** Hard links are not supported here: lock files are created with O_EXCL instead of linked. */
  private noLinks = false;
  private readonly pinned = new Map<string, number>();

  constructor(
    private readonly dir: SafeDir,
    options: Partial<LockOptions> = {},
  ) {
    this.options = { ...DEFAULT_LOCK_OPTIONS, ...options };
  }

  /**
   * Run `fn` holding the named lock, in this process and across processes. `recovered` tells `fn` that the lock
   * was taken over from a holder that died, which may have left its critical section half done. `timeoutMs`
   * overrides how long to wait for a live holder before LockTimeoutError (which names the holder).
   */
  async withLock<T>(name: string, fn: (info: { recovered: boolean }) => Promise<T> | T, opts: { timeoutMs?: number } = {}): Promise<T> {
    checkId(name, 'lock name');
    let mutex = this.mutexes.get(name);
    if (!mutex) {
      mutex = new Mutex();
      this.mutexes.set(name, mutex);
    }
    return mutex.run(async () => {
      const { owner, recovered } = await this.acquire(name, opts.timeoutMs ?? this.options.timeoutMs);
      try {
        return await fn({ recovered });
      } finally {
        this.release(name, owner);
      }
    });
  }

  /** Names of the locks this process holds right now. */
  heldNames(): string[] {
    return [...this.held.keys()];
  }

  /** Release `name` now if this process holds it (synchronous: for exit handlers that know it is safe). */
  releaseNow(name: string): void {
    const owner = this.held.get(name);
    if (owner) this.release(name, owner);
  }

  /**
   * While a write under `name` is in flight (its system calls may complete after a shutdown began), releaseAll
   * leaves that lock alone: the holder releases it when the write is done, or, if the process ends first, the
   * next holder takes it over from a dead process and knows to check everything.
   */
  pin(name: string): void {
    this.pinned.set(name, (this.pinned.get(name) ?? 0) + 1);
  }

  unpin(name: string): void {
    const n = (this.pinned.get(name) ?? 0) - 1;
    if (n > 0) this.pinned.set(name, n);
    else this.pinned.delete(name);
  }

  /** Release every lock this process holds (shutdown path; synchronous on purpose), except pinned ones. */
  releaseAll(): void {
    for (const [name, owner] of this.held) if (!this.pinned.has(name)) this.release(name, owner);
    for (const ticket of this.tickets.values()) ticket.remove();
    this.tickets.clear();
  }

  /** Write `owner` into this process's ticket for `name` and link it as the lock file; false when held. */
  private tryTake(name: string, file: string, owner: LockOwner): boolean {
    if (this.noLinks) return tryCreate(file, owner);
    for (let attempt = 0; ; attempt++) {
      let ticket = this.tickets.get(name);
      if (!ticket) {
        if (!this.swept) {
          this.swept = true;
          sweepDeadTickets(this.dir.root, processAlive);
        }
        ticket = Ticket.create(this.dir, name);
        this.tickets.set(name, ticket);
      }
      ticket.write(owner);
      faultPoint('lock-ticket-written');
      try {
        fs.linkSync(ticket.file, file);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        if (NO_LINKS.has(code ?? '')) {
          // A file system without hard links (FAT, some network shares): create lock files instead.
          this.noLinks = true;
          ticket.remove();
          this.tickets.delete(name);
          return tryCreate(file, owner);
        }
        // The ticket's name was removed (by hand, or a sweep that took it for a dead process's): make another.
        if (code !== 'ENOENT' || attempt > 0) throw err;
        ticket.remove();
        this.tickets.delete(name);
      }
    }
  }

  private lockPath(name: string): string {
    return path.join(this.dir.root, `${name}.lock`);
  }

  /**
   * Another live process has been waiting for `name` and asked for a turn. A holder that takes the lock again and
   * again (the queue owner, between batches) looks before retaking it, so such a waiter does not have to hit the
   * moment between a release and the next take.
   */
  wanted(name: string): boolean {
    const file = this.askPath(name);
    // Nearly always absent, and asked between batches: a look costs less than an open that throws ENOENT.
    if (!fs.lstatSync(file, { throwIfNoEntry: false })) return false;
    const asker = readOwner(file);
    if (asker === 'missing') return false;
    if (asker !== 'unreadable' && asker.pid === process.pid && asker.host === HOST) return false;
    // An asker gives up after its timeout; one that is gone left its request behind.
    if (isStale(asker, this.options.timeoutMs, file)) {
      removeIfSame(file, asker);
      return false;
    }
    return true;
  }

  private askPath(name: string): string {
    return path.join(this.dir.root, `${name}.wanted`);
  }

  private async acquire(name: string, timeoutMs: number): Promise<{ owner: LockOwner; recovered: boolean }> {
    let asked: LockOwner | undefined;
    try {
      return await this.take(name, timeoutMs, () => {
        if (asked) return;
        const me: LockOwner = { pid: process.pid, host: HOST, token: newToken(), at: Date.now() };
        try {
          if (tryCreate(this.askPath(name), me)) asked = me;
        } catch {
          // Asking is a courtesy: a request that cannot be written just leaves this waiter polling as before.
        }
      });
    } finally {
      if (asked) removeIfSame(this.askPath(name), asked);
    }
  }

  /**
   * Take the lock, waiting for a live holder; `ask` is called on every attempt once the wait has lasted a few
   * (another process's request may be there already: ours goes in when that one is gone).
   */
  private async take(name: string, timeoutMs: number, ask: () => void): Promise<{ owner: LockOwner; recovered: boolean }> {
    const file = this.lockPath(name);
    const started = Date.now();
    let attempt = 0;
    let recovered = false;
    for (;;) {
      const owner: LockOwner = { pid: process.pid, host: HOST, token: newToken(), at: Date.now() };
      if (this.tryTake(name, file, owner)) {
        this.held.set(name, owner);
        faultPoint('lock-acquired');
        return { owner, recovered };
      }
      const current = readOwner(file);
      if (current === 'missing') continue;
      const waited = Date.now() - started;
      if (isStale(current, this.options.staleMs, file)) {
        // Another waiter may hold the reclaim guard; if ours did not remove the lock, wait a moment as usual.
        if (reclaimStale(file, current, this.options.staleMs)) {
          recovered = true;
          // Its holder is gone: so are its tickets' owners, most likely.
          sweepDeadTickets(this.dir.root, processAlive);
          continue;
        }
      }
      if (waited >= timeoutMs) {
        throw new LockTimeoutError(name, current === 'unreadable' ? undefined : current, waited);
      }
      attempt++;
      if (attempt >= ASK_AFTER_ATTEMPTS) ask();
      // Short, jittered waits: critical sections here last a millisecond or two, so a waiter that sleeps longer
      // leaves the lock idle.
      await sleep(0.5 + Math.random() * Math.min(attempt, 4));
    }
  }

  private release(name: string, owner: LockOwner): void {
    // Already released: at shutdown (releaseAll, releaseNow) while its critical section was still running.
    if (this.held.get(name) !== owner) return;
    this.held.delete(name);
    const file = this.lockPath(name);
    if (this.stillOurs(name, file, owner)) {
      try {
        fs.unlinkSync(file);
      } catch {
        /* already gone */
      }
    } else {
      process.emitWarning(`loki: the "${name}" lock was taken over while held (held longer than ${this.options.staleMs} ms?)`, {
        code: 'LOKI_LOCK_COMPROMISED',
      });
    }
  }

  /**
   * The lock file is still the one this process made for `owner`. A linked ticket is recognised by its inode (one
   * lstat); a lock file created without links is read for its token.
   */
  private stillOurs(name: string, file: string, owner: LockOwner): boolean {
    const ticket = this.noLinks ? undefined : this.tickets.get(name);
    if (ticket) {
      try {
        return ticket.isLinkedAs(fs.lstatSync(file));
      } catch {
        return false;
      }
    }
    const current = readOwner(file);
    return current !== 'missing' && current !== 'unreadable' && current.token === owner.token;
  }
}

/**
 * Remove a stale lock, but only after re-reading it under the `<file>.reclaim` guard, so a waiter that saw the
 * stale lock late can never delete one somebody has just taken. True when the lock is gone.
 */
export function reclaimStale(file: string, seen: LockOwner | 'unreadable', staleMs: number): boolean {
  const guard = `${file}.reclaim`;
  const me: LockOwner = { pid: process.pid, host: HOST, token: newToken(), at: Date.now() };
  if (!tryCreate(guard, me)) {
    const guardOwner = readOwner(guard);
    // The guard is held for microseconds; a guard that is old or whose owner died is itself stale.
    if (guardOwner !== 'missing' && isStale(guardOwner, 2_000, guard)) removeIfSame(guard, guardOwner);
    return false;
  }
  try {
    const again = readOwner(file);
    if (again === 'missing') return true;
    const same = seen === 'unreadable' ? again === 'unreadable' : again !== 'unreadable' && again.token === seen.token;
    if (same && isStale(again, staleMs, file)) {
      fs.unlinkSync(file);
      process.emitWarning(`loki: removed a stale "${path.basename(file, '.lock')}" lock left by ${describeOwner(again)}`, { code: 'LOKI_STALE_LOCK' });
      return true;
    }
    return false;
  } finally {
    removeIfSame(guard, me);
  }
}

function tryCreate(file: string, owner: LockOwner): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(owner));
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** The owner recorded in a lock file; 'unreadable' while it is being written or when it is garbage. */
export function readOwner(file: string): LockOwner | 'missing' | 'unreadable' {
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | O_NOFOLLOW);
    try {
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    return 'unreadable';
  }
  try {
    const v = JSON.parse(text) as LockOwner;
    if (typeof v.pid === 'number' && typeof v.token === 'string' && typeof v.at === 'number' && typeof v.host === 'string') return v;
  } catch {
    /* fall through */
  }
  return 'unreadable';
}

export function isStale(owner: LockOwner | 'unreadable', staleMs: number, file: string): boolean {
  if (owner === 'unreadable') {
    // A lock file is written right after creation; one still empty after a second belongs to a dead writer.
    try {
      return Date.now() - fs.lstatSync(file).mtimeMs > 1_000;
    } catch {
      return false;
    }
  }
  if (Date.now() - owner.at > staleMs) return true;
  return owner.host === HOST && !processAlive(owner.pid);
}

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeIfSame(file: string, owner: LockOwner | 'unreadable'): void {
  const current = readOwner(file);
  if (current === 'missing') return;
  const same = owner === 'unreadable' ? current === 'unreadable' : current !== 'unreadable' && current.token === owner.token;
  if (same) {
    try {
      fs.unlinkSync(file);
    } catch {
      /* gone */
    }
  }
}

export function describeOwner(owner: LockOwner | 'unreadable'): string {
  if (owner === 'unreadable') return 'a writer that died before recording itself';
  return `pid ${owner.pid} on ${owner.host} (${Math.round((Date.now() - owner.at) / 1000)} s ago)`;
}

/** Inspect the lock files of a lock directory, for `loki doctor`. */
export function inspectLocks(dir: SafeDir, staleMs = DEFAULT_LOCK_OPTIONS.staleMs): { name: string; owner: string; stale: boolean }[] {
  const out: { name: string; owner: string; stale: boolean }[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir.root);
  } catch {
    return out;
  }
  for (const entry of names) {
    if (!entry.endsWith('.lock')) continue;
    const file = path.join(dir.root, entry);
    const owner = readOwner(file);
    if (owner === 'missing') continue;
    out.push({ name: entry.slice(0, -'.lock'.length), owner: describeOwner(owner), stale: isStale(owner, staleMs, file) });
  }
  return out;
}

/** Remove the stale lock files of a lock directory; returns the names removed. */
export function clearStaleLocks(dir: SafeDir, staleMs = DEFAULT_LOCK_OPTIONS.staleMs): string[] {
  const removed: string[] = [];
  for (const lock of inspectLocks(dir, staleMs)) {
    if (!lock.stale) continue;
    const file = path.join(dir.root, `${lock.name}.lock`);
    const owner = readOwner(file);
    if (owner !== 'missing' && isStale(owner, staleMs, file) && reclaimStale(file, owner, staleMs)) removed.push(lock.name);
  }
  return removed;
}
