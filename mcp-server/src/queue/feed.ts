/**
 * The queue's change feed (`queue/changes.log`) as a format: one line per task write, "<id> <status> <rev>
 * <lease expiry or ->", appended under the queue lock after the task files are written. Readers: the task cache
 * (queue/cache.ts), to catch up without reading every file, and checkpoints, to learn which task files changed
 * while they scanned without the lock (checkpoints/state.ts).
 */
import { TASK_STATES, type Task } from '../domain/tasks.js';
import { readTail, writeFileAtomic } from '../store/fsx.js';
import { checkId } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { CHANGE_FEED, QUEUE_DIR } from './records.js';

export interface FeedNote {
  id: string;
  status: Task['status'];
  rev: number;
  expiresAt: string | null;
}

export function feedLine(t: Task): string {
  return `${t.id} ${t.status} ${t.rev} ${t.lease?.expiresAt ?? '-'}\n`;
}

function parseFeedLine(line: string): FeedNote | undefined {
  const [id, status, rev, expiresAt, extra] = line.split(' ');
  if (extra !== undefined || id === undefined || !isTaskId(id) || !(TASK_STATES as readonly string[]).includes(status ?? '')) return undefined;
  const n = Number(rev);
  if (!Number.isInteger(n) || n < 0 || expiresAt === undefined || (expiresAt !== '-' && Number.isNaN(Date.parse(expiresAt)))) return undefined;
  return { id, status: status as Task['status'], rev: n, expiresAt: expiresAt === '-' ? null : expiresAt };
}

/** The notes of the complete lines of `data` (up to its last newline), in order; undefined if a line is bad (blank lines are skipped). */
export function parseFeedLines(data: Buffer): FeedNote[] | undefined {
  const end = data.lastIndexOf(0x0a) + 1;
  const notes: FeedNote[] = [];
  if (end === 0) return notes;
  for (const line of data.subarray(0, end - 1).toString('utf8').split('\n')) {
    if (line === '') continue;
    const note = parseFeedLine(line);
    if (!note) return undefined;
    notes.push(note);
  }
  return notes;
}

export function isTaskId(id: string): boolean {
  try {
    checkId(id);
    return true;
  } catch {
    return false;
  }
}

/** A position in one feed file: its identity (inode and creation time) and a byte offset at a line start. */
export interface FeedMark {
  ino: number;
  born: number;
  offset: number;
}

/** Lines are far shorter than this; the last line start is looked for in the feed's last bytes. */
const LINE_LOOKBACK = 4096;

/**
 * Where the feed ends now, at a line start (a writer may be half way through an append when there is no lock);
 * undefined when there is no feed or no line start near its end.
 */
export function feedMark(store: Store): FeedMark | undefined {
  const end = readTail(store.loki, CHANGE_FEED, Number.MAX_SAFE_INTEGER);
  if (!end) return undefined;
  if (end.size === 0) return { ino: end.ino, born: end.born, offset: 0 };
  const from = Math.max(0, end.size - LINE_LOOKBACK);
  const tail = readTail(store.loki, CHANGE_FEED, from, end.size - from);
  if (!tail || tail.ino !== end.ino || tail.born !== end.born) return undefined;
  const lastNewline = tail.data.lastIndexOf(0x0a);
  if (lastNewline < 0) return from === 0 ? { ino: end.ino, born: end.born, offset: 0 } : undefined;
  return { ino: end.ino, born: end.born, offset: from + lastNewline + 1 };
}

/**
 * The ids of the tasks written since `mark` (up to `until`, a later mark of the same feed; else to the end, for a
 * caller holding the queue lock: every writer has finished its lines). Undefined when that cannot be told from
 * the feed: it was replaced or shrank (restarted), it is missing, or a line is bad or torn (a writer died).
 */
export function writtenSince(store: Store, mark: FeedMark, until?: FeedMark): Set<string> | undefined {
  if (until && (until.ino !== mark.ino || until.born !== mark.born || until.offset < mark.offset)) return undefined;
  const tail = readTail(store.loki, CHANGE_FEED, mark.offset, until ? until.offset - mark.offset : undefined);
  if (!tail || tail.ino !== mark.ino || tail.born !== mark.born || tail.size < mark.offset) return undefined;
  if (tail.data.length === 0) return new Set();
  // Every byte up to the end (or to `until`) must be there: a read cut short by its size limit cannot tell.
  if (tail.data.length !== (until ? until.offset : tail.size) - mark.offset || tail.data[tail.data.length - 1] !== 0x0a) return undefined;
  const notes = parseFeedLines(tail.data);
  return notes && new Set(notes.map((n) => n.id));
}

/**
 * Start the feed afresh (an empty file, a new inode): every process reloads its queue view from the task files.
 * For writers outside the queue (a rollback, a checkpoint that took the lock over from a dead holder).
 */
export function restartFeed(store: Store): void {
  if (store.exists(QUEUE_DIR)) writeFileAtomic(store.loki, CHANGE_FEED, '');
}
