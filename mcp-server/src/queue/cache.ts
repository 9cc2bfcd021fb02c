/**
 * The in-memory view of the queue that each process keeps, so choosing a task does not read every task file.
 *
 * Task files (`queue/tasks/<id>.json`) are the truth. Whoever writes one, under the queue lock, then appends its
 * id to `queue/changes.log`. Another process catches up by reading only the bytes of that feed it has not seen
 * and re-reading the files named there, so a claim costs the same at 100 and at 10,000 tasks. A feed that was
 * replaced (new inode), shrank, or ends in a torn line means "reload everything". The feed is a hint for live
 * processes, never the truth: writes re-read the task they change from disk, and after a crash or power loss
 * every process starts with a full load.
 */
import { claimOrder, type Task } from '../domain/tasks.js';
import { appendFile, listNames, readTail, writeFileAtomic } from '../store/fsx.js';
import { checkId } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { CHANGE_FEED, TASKS_DIR, TASK_RECORD, taskFile } from './records.js';

/** Past this size the feed is started afresh (everyone reloads once). */
const FEED_RESET_BYTES = 1024 * 1024;

export class TaskCache {
  private readonly tasks = new Map<string, Task>();
  /** Pending and failed tasks in claim order, so a claim looks at the head instead of every task. */
  private readonly claimable = new SortedList<Task>(claimOrder);
  private readonly held = new Map<string, Task>();
  private feed: { ino: number; offset: number } | undefined;
  /** The feed ends in a line without its newline: a writer died mid-append. */
  private torn = false;

  constructor(private readonly store: Store) {}

  get(id: string): Task | undefined {
    return this.tasks.get(id);
  }

  all(): IterableIterator<Task> {
    return this.tasks.values();
  }

  /** Pending and failed tasks, best first (see claimOrder). */
  inClaimOrder(): readonly Task[] {
    return this.claimable.items;
  }

  /** Tasks in progress. */
  inProgress(): IterableIterator<Task> {
    return this.held.values();
  }

  get size(): number {
    return this.tasks.size;
  }

  /** Bring the view up to date with what other processes wrote. Safe without the lock. */
  refresh(): void {
    const seen = this.feed;
    const tail = seen ? readTail(this.store.loki, CHANGE_FEED, seen.offset) : undefined;
    if (!seen || !tail || tail.ino !== seen.ino || tail.size < seen.offset) {
      this.reload();
      return;
    }
    const end = tail.data.lastIndexOf(0x0a) + 1;
    this.torn = end < tail.data.length;
    if (end === 0) return;
    const ids = new Set(tail.data.subarray(0, end).toString('utf8').split('\n'));
    ids.delete('');
    for (const id of ids) {
      if (!isTaskId(id)) {
        this.reload();
        return;
      }
    }
    for (const id of ids) this.reread(id);
    this.feed = { ino: seen.ino, offset: seen.offset + end };
  }

  /** Read one task from disk (the truth), update the view and return it. */
  reread(id: string): Task | undefined {
    const task = this.store.records.read(taskFile(id), TASK_RECORD);
    this.put(id, task);
    return task;
  }

  private put(id: string, task: Task | undefined): void {
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
    this.refresh();
    if (recovered || this.torn) this.resetFeed();
  }

  /** Under the queue lock, after writing task files: announce them to the other processes. */
  written(tasks: readonly Task[]): void {
    if (tasks.length === 0) return;
    for (const t of tasks) this.put(t.id, t);
    if (!this.feed || this.feed.offset > FEED_RESET_BYTES) {
      this.resetFeed();
      return;
    }
    const lines = tasks.map((t) => `${t.id}\n`).join('');
    const appended = appendFile(this.store.loki, CHANGE_FEED, lines, false);
    // Under the lock nobody else appends; anything unexpected just means a full reload next time.
    const ours = (this.feed.ino === appended.ino || this.feed.ino === -1) && appended.before === this.feed.offset;
    this.feed = ours ? { ino: appended.ino, offset: appended.after } : undefined;
  }

  /** Forget everything (the queue folder was archived or replaced). */
  invalidate(): void {
    this.clear();
    this.feed = undefined;
  }

  private clear(): void {
    this.tasks.clear();
    this.claimable.clear();
    this.held.clear();
  }

  private resetFeed(): void {
    writeFileAtomic(this.store.loki, CHANGE_FEED, '');
    this.reload();
  }

  private reload(): void {
    const end = readTail(this.store.loki, CHANGE_FEED, Number.MAX_SAFE_INTEGER);
    const before = end && end.size > 0 ? readTail(this.store.loki, CHANGE_FEED, end.size - 1) : end;
    this.torn = before !== undefined && before.data.length > 0 && before.data[before.data.length - 1] !== 0x0a;
    this.clear();
    for (const name of listNames(this.store.loki, TASKS_DIR)) {
      if (!name.endsWith('.json') || name.startsWith('.')) continue;
      const id = name.slice(0, -'.json'.length);
      if (isTaskId(id)) this.reread(id);
    }
    // Changes made while we listed are in the feed after `before` and are re-read on the next refresh.
    this.feed = before ? { ino: before.ino, offset: before.size } : { ino: -1, offset: 0 };
  }
}

function isTaskId(id: string): boolean {
  try {
    checkId(id);
    return true;
  } catch {
    return false;
  }
}

/** A list kept sorted by `compare` (a total order), with binary-search insert and remove. */
class SortedList<T> {
  items: T[] = [];

  constructor(private readonly compare: (a: T, b: T) => number) {}

  insert(item: T): void {
    this.items.splice(this.position(item), 0, item);
  }

  remove(item: T): void {
    const at = this.position(item);
    if (at < this.items.length && this.compare(this.items[at]!, item) === 0) this.items.splice(at, 1);
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
