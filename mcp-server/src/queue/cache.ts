/**
 * The in-memory view of the queue that each process keeps, so choosing a task does not read every task file.
 *
 * Task files (`queue/tasks/<id>.json`) are the truth. Whoever writes one, under the queue lock, then appends a
 * line to `queue/changes.log`: the id, its new status, revision and lease expiry. Another process catches up by
 * reading only the bytes of that feed it has not seen: a task that was claimed or finished is updated from the
 * line itself, one that became claimable is re-read, so a claim costs the same at 100 and at 10,000 tasks and
 * does not grow with the number of processes. A feed that was
 * replaced (new inode), shrank, or ends in a torn line means "reload everything". The feed is a hint for live
 * processes, never the truth outside the queue lock: after a crash or power loss every process starts with a full
 * load. Under the lock the caught-up view is exact (see `exact`), so a change reads no task file.
 */
import { claimOrder, type Task } from '../domain/tasks.js';
import { listNames, openForAppend, readTail, removeFile, writeAll, writeFileAtomic } from '../store/fsx.js';
import { KeptFile } from '../store/kept-file.js';
import { processAlive } from '../store/lock.js';
import { PathError, type SafeDir } from '../store/paths.js';
import { sweepDeadSpares } from '../store/spares.js';
import type { Store } from '../store/store.js';
import { feedLine, isTaskId, parseFeedLines, type FeedNote } from './feed.js';
import { CHANGE_FEED, TASKS_DIR, TASK_RECORD, taskFile } from './records.js';

/** Catching up on more tasks than this at once re-sorts the claim order once rather than per change. */
const BULK_CHANGES = 64;
/** Past this size the feed is started afresh (everyone reloads once). */
const FEED_RESET_BYTES = 1024 * 1024;

export class TaskCache {
  private readonly tasks = new Map<string, Task>();
  /** Pending and failed tasks in claim order, so a claim looks at the head instead of every task. */
  private readonly claimable = new SortedList<Task>(claimOrder);
  private readonly held = new Map<string, Task>();
  /** Tasks whose status came from the feed; the rest of the record is read when it is needed. */
  private readonly stale = new Set<string>();
  /** Which feed file we follow (inode and creation time) and how far we have read it. */
  private feed: { ino: number; born: number; offset: number } | undefined;
  /** The feed ends in a line without its newline: a writer died mid-append. */
  private torn = false;
  /** Written by the current locked section but not on disk yet: reads see these before the files. */
  private readonly staged = new Map<string, Task>();
  /**
   * This process holds the queue lock and has caught up: nobody else writes while it is held, and every writer
   * announces its writes on the feed before letting go (one that died first leaves a lock that is taken over as
   * `recovered`, and the view is then reloaded from the files), so the view is the truth and is not read again.
   */
  private exact = false;
  /** This process holds the queue lock: nobody rewrites a task file while we read it. */
  private locked = false;

  /** The feed stays open for this process's appends (store/kept-file.ts). */
  private readonly feedFile: KeptFile;

  constructor(private readonly store: Store) {
    this.feedFile = new KeptFile(store.loki, CHANGE_FEED, 'file', (dir, rel) => openForAppend(dir, rel).fd);
  }

  /** Close the feed kept open for appends. */
  close(): void {
    this.feedFile.close();
  }

  get(id: string): Task | undefined {
    return this.stale.has(id) ? this.reread(id) : this.tasks.get(id);
  }

  /** Every task, in full (tasks known only from the feed are read first). */
  all(): IterableIterator<Task> {
    for (const id of [...this.stale]) this.reread(id);
    return this.tasks.values();
  }

  /**
   * Every task with a current status: open tasks in full, finished ones possibly as known from the feed (status
   * and revision only), which is all that counting, readiness and dependency checks look at.
   */
  current(): IterableIterator<Task> {
    for (const id of [...this.stale]) if (!isFinished(this.tasks.get(id))) this.reread(id);
    return this.tasks.values();
  }

  /** The task as last announced, without reading it: its status and lease expiry are current, the rest may lag. */
  peek(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  /** Pending and failed tasks, best first (see claimOrder). */
  inClaimOrder(): readonly Task[] {
    return this.claimable.items;
  }

  /** Tasks in progress (their lease expiry is current; other details may lag until read). */
  inProgress(): IterableIterator<Task> {
    return this.held.values();
  }

  get size(): number {
    return this.tasks.size;
  }

  /** How many tasks are in progress. */
  get inProgressCount(): number {
    return this.held.size;
  }

  /** Bring the view up to date with what other processes wrote. Safe without the lock. */
  refresh(): void {
    const seen = this.feed;
    const tail = seen ? readTail(this.store.loki, CHANGE_FEED, seen.offset) : undefined;
    if (!seen || !tail || tail.ino !== seen.ino || tail.born !== seen.born || tail.size < seen.offset) {
      this.reload();
      return;
    }
    const end = tail.data.lastIndexOf(0x0a) + 1;
    this.torn = end < tail.data.length;
    if (end === 0) return;
    const parsed = parseFeedLines(tail.data);
    if (!parsed) {
      this.reload();
      return;
    }
    // The last line of each task says where it stands.
    const latest = new Map<string, FeedNote>();
    for (const note of parsed) latest.set(note.id, note);
    // A view far behind (a process that was the owner's client becoming the owner) takes in thousands of
    // changes: the claim order is sorted once at the end instead of kept sorted through each of them.
    const bulk = latest.size > BULK_CHANGES;
    if (bulk) this.claimable.suspend();
    try {
      for (const note of latest.values()) this.apply(note);
    } finally {
      if (bulk) this.claimable.resume();
    }
    this.feed = { ...seen, offset: seen.offset + end };
  }

  /**
   * Take in one announced change. A task that left the claimable states is updated from the line alone (its
   * status and lease expiry) and read in full only when someone asks for it; one that is, or becomes,
   * claimable is read now, since claim order depends on its details.
   */
  private apply(note: FeedNote): void {
    const cached = this.tasks.get(note.id);
    if (cached && cached.rev >= note.rev && !this.stale.has(note.id)) return;
    const claimable = note.status === 'pending' || note.status === 'failed';
    if (!cached || claimable) {
      this.reread(note.id);
      return;
    }
    const lease = note.status === 'in-progress' && note.expiresAt ? { agent: cached.lease?.agent ?? '', token: '', claimedAt: '', expiresAt: note.expiresAt } : null;
    this.put(note.id, { ...cached, status: note.status, rev: note.rev, lease });
    this.stale.add(note.id);
  }

  /** Take in tasks written by another process that told us (the queue owner's reply): newer revisions only. */
  observe(tasks: readonly Task[]): void {
    for (const t of tasks) {
      const cached = this.tasks.get(t.id);
      if (!cached || cached.rev <= t.rev) this.put(t.id, t);
    }
  }

  /** Under the queue lock: tasks about to be written (see written()). */
  stage(tasks: readonly Task[]): void {
    for (const t of tasks) {
      this.staged.set(t.id, t);
      this.put(t.id, t);
    }
  }

  /** Take back staged versions: each task returns to its earlier staged version, or to its file. */
  unstage(before: ReadonlyMap<string, Task | undefined>): void {
    for (const [id, task] of before) {
      if (task) this.stage([task]);
      else {
        this.staged.delete(id);
        // The view still holds the version that is being taken back: read the file itself.
        this.readFile(id);
      }
    }
  }

  /** Forget every staged version (nothing of them was written); the view returns to the files. */
  discardStaged(): void {
    const ids = [...this.staged.keys()];
    this.staged.clear();
    for (const id of ids) this.readFile(id);
  }

  /** Read one task (the staged version, else the file: the truth), update the view and return it. */
  reread(id: string): Task | undefined {
    const pending = this.staged.get(id);
    if (pending) {
      this.put(id, pending);
      return pending;
    }
    if (this.exact && !this.stale.has(id) && this.tasks.has(id)) return this.tasks.get(id);
    return this.readFile(id);
  }

  /**
   * Read one task's file, whatever the view holds, and put it in the view. `dir`: the tasks folder, already
   * resolved (a full load reads every file through it).
   */
  private readFile(id: string, dir?: SafeDir): Task | undefined {
    // Task files are rewritten in recycled inodes (store/spares.ts): unless we hold the lock, check the read.
    let task = this.store.records.read(taskFile(id), TASK_RECORD, !this.locked, dir && { dir, rel: `${id}.json` });
    if (task && task.id !== id) {
      this.store.records.quarantine(taskFile(id), `holds task "${task.id}", not "${id}"`);
      task = undefined;
    }
    this.put(id, task);
    return task;
  }

  private put(id: string, task: Task | undefined): void {
    this.stale.delete(id);
    const old = this.tasks.get(id);
    if (old) {
      if (old.status === 'pending' || old.status === 'failed') this.claimable.remove(old);
      this.held.delete(id);
    }
    if (!task) {
      this.tasks.delete(id);
      return;
    }
    this.tasks.set(id, task);
    if (task.status === 'pending' || task.status === 'failed') this.claimable.insert(task);
    else if (task.status === 'in-progress') this.held.set(id, task);
  }

  /**
   * Under the queue lock, before changing anything: catch up, and start the feed afresh when a writer died
   * mid-append (torn last line) or the lock was taken over from a dead holder.
   */
  prepareWrite(recovered: boolean): void {
    this.locked = true;
    try {
      this.refresh();
      if (recovered || this.torn) this.resetFeed();
    } catch (err) {
      this.locked = false;
      throw err;
    }
    this.exact = true;
  }

  /** The queue lock is released: files may change under us again. */
  endWrite(): void {
    this.exact = false;
    this.locked = false;
  }

  /** Under the queue lock, after writing task files: announce them to the other processes. */
  written(tasks: readonly Task[]): void {
    if (tasks.length === 0) return;
    for (const t of tasks) {
      this.staged.delete(t.id);
      this.put(t.id, t);
    }
    if (!this.feed || this.feed.offset > FEED_RESET_BYTES) {
      this.resetFeed();
      return;
    }
    const lines = Buffer.from(tasks.map(feedLine).join(''), 'utf8');
    const target = this.feedFile.get();
    try {
      writeAll(target.fd, lines);
    } catch (err) {
      this.feedFile.letGo();
      throw err;
    }
    const appended = { ino: target.ino, before: target.size, after: target.size + lines.length };
    // Under the lock nobody else appends; anything unexpected just means a full reload next time.
    const ours = this.feed.ino === appended.ino && appended.before === this.feed.offset;
    // A feed that did not exist yet was created by this append: learn its identity on the next refresh.
    this.feed = ours ? { ...this.feed, offset: appended.after } : undefined;
  }

  /** Forget everything (the queue folder was archived or replaced). */
  invalidate(): void {
    this.clear();
    this.feed = undefined;
  }

  private clear(): void {
    this.stale.clear();
    this.tasks.clear();
    this.claimable.clear();
    this.held.clear();
  }

  /** After a failed change: start the feed afresh if possible (everyone reloads); never throws. */
  resetQuietly(): void {
    try {
      this.resetFeed();
    } catch {
      // No new feed: remove it, which tells every process to reload just the same.
      try {
        removeFile(this.store.loki, CHANGE_FEED);
      } catch {
        /* the file system refuses everything; nothing more can be done here */
      }
      this.invalidate();
    }
  }

  private resetFeed(): void {
    writeFileAtomic(this.store.loki, CHANGE_FEED, '');
    this.reload();
  }

  /**
   * Load every task. A task the feed says is finished (completed or dead-lettered) is taken from its last feed
   * line (status and revision) and read in full only when someone asks for it: a new queue owner, taking over
   * near the end of a run, then reads the files of the open tasks only. Every other task is read now.
   */
  private reload(): void {
    const whole = readTail(this.store.loki, CHANGE_FEED, 0);
    this.torn = whole !== undefined && whole.data.length > 0 && whole.data[whole.data.length - 1] !== 0x0a;
    const finished = whole ? finishedInFeed(whole.data) : new Map<string, FeedNote>();
    this.clear();
    const names = listNames(this.store.loki, TASKS_DIR);
    // The folder is resolved (and checked) once; each file is still opened without following links and checked.
    const dir = names.length > 0 ? tasksFolder(this.store) : undefined;
    if (dir) sweepDeadSpares(dir.root, names, processAlive);
    for (const name of names) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const id = name.slice(0, -'.json'.length);
      if (!isTaskId(id)) continue;
      const note = finished.get(id);
      if (note) {
        this.put(id, finishedPlaceholder(note));
        this.stale.add(id);
      } else {
        this.readFile(id, dir);
      }
    }
    // Changes made while we listed are in the feed after what we read, and are taken in on the next refresh.
    this.feed = whole ? { ino: whole.ino, born: whole.born, offset: whole.size } : { ino: -1, born: 0, offset: 0 };
  }
}

/** The tasks folder, resolved; undefined when it went away (the queue was archived) since it was listed. */
function tasksFolder(store: Store): SafeDir | undefined {
  try {
    return store.loki.child(TASKS_DIR, false);
  } catch (err) {
    if (err instanceof PathError && err.code === 'PATH_MISSING') return undefined;
    throw err;
  }
}

function isFinished(t: Task | undefined): boolean {
  return t?.status === 'completed' || t?.status === 'dead-letter';
}

/** The tasks whose last line in the feed (complete lines only) says they are finished; empty if a line is bad. */
function finishedInFeed(data: Buffer): Map<string, FeedNote> {
  const last = new Map((parseFeedLines(data) ?? []).map((n) => [n.id, n]));
  for (const [id, note] of last) if (note.status !== 'completed' && note.status !== 'dead-letter') last.delete(id);
  return last;
}

/**
 * A finished task known only from the feed: its id, status and revision are real, the rest is empty until the
 * file is read (it is kept stale, so get() and all() read it first).
 */
function finishedPlaceholder(note: FeedNote): Task {
  return {
    id: note.id,
    seq: 1,
    runId: '',
    title: '',
    description: '',
    priority: 'low',
    phase: 'BOOTSTRAP',
    dependencies: [],
    acceptance: [],
    source: { kind: 'spec', section: null },
    status: note.status,
    lease: null,
    attempts: [],
    failures: 0,
    blockedReason: null,
    completion: null,
    deadLetteredAt: null,
    createdAt: '',
    updatedAt: '',
    rev: note.rev,
  };
}

/**
 * A list kept sorted by `compare` (a total order), with binary-search insert and remove; between suspend() and
 * resume() (a bulk catch-up, which reads nothing from it) `items` is unsorted.
 */
class SortedList<T> {
  items: T[] = [];
  /** While suspended: items are appended unsorted, and removed ones are noted (by identity) until resume(). */
  private removed: Set<T> | undefined;

  constructor(private readonly compare: (a: T, b: T) => number) {}

  insert(item: T): void {
    if (this.removed) {
      this.removed.delete(item);
      this.items.push(item);
    } else this.items.splice(this.position(item), 0, item);
  }

  remove(item: T): void {
    if (this.removed) {
      this.removed.add(item);
      return;
    }
    const at = this.position(item);
    if (at < this.items.length && this.compare(this.items[at]!, item) === 0) this.items.splice(at, 1);
  }

  /** Many changes are coming: take them unsorted (items is not in order until resume). */
  suspend(): void {
    this.removed ??= new Set();
  }

  /** Drop what was removed while suspended and sort once. */
  resume(): void {
    const removed = this.removed;
    if (!removed) return;
    this.removed = undefined;
    // An item removed and inserted again was appended twice: keep it once.
    this.items = [...new Set(this.items)].filter((t) => !removed.has(t)).sort(this.compare);
  }

  clear(): void {
    this.items = [];
  }

  /** The first index whose item is not before `item`. */
  private position(item: T): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(this.items[mid]!, item) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
