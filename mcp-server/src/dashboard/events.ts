/**
 * Live updates for every open page: one poller per dashboard, however many browsers listen. It asks the cheap
 * change stamp (run/watch.ts: the audit log's head and the signal files) once a second, as `loki status --watch` does, and when it moved, reads
 * what happened since (run/progress.ts, the same events `loki run` prints) and hands one message to each
 * listener. A listener is a server-sent events stream; a page reloads what it shows when a message comes.
 */
import type { Project } from '../project.js';
import { ProgressWatch, type ProgressEvent } from '../run/progress.js';
import { changeStamp } from '../run/watch.js';
import { HOOK_STATE_FILE, HOOK_STATE_RECORD } from '../run/hook-state.js';
import { readRun } from '../run/state.js';
import { log } from '../log.js';

export interface Change {
  stamp: string;
  head: number;
  events: ProgressEvent[];
}

type Listener = (c: Change) => void;

/** Events a change carries at most: the page's feed shows the latest. */
export const FEED_EVENTS = 50;
/** The least time between two announcements while the run keeps changing (monotonic: a clock step changes nothing). */
const BUSY_GAP_MS = 2000;

export class ChangeFeed {
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private last: string;
  private readonly watch: ProgressWatch;
  private busy = false;
  private announcedAt = -Infinity;

  constructor(
    private readonly project: Project,
    private readonly intervalMs = 1000,
  ) {
    this.last = this.look();
    const head = project.existingStore()?.audit.head() ?? -1;
    this.watch = new ProgressWatch(project, head + 1, project.actor);
  }

  /** The stamp now, sent in the stream's `hello`. */
  get stamp(): string {
    return this.last;
  }

  /**
   * The stamp of the last change announced to the pages; with no page listening, the run as it is now (nothing
   * polls then, and a lone API client must not be served a stale answer).
   */
  announced(): string {
    return this.timer ? this.last : this.look();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    this.timer ??= setInterval(() => this.poll(), this.intervalMs);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  /**
   * Look once. While the run keeps changing (agents draining a queue), the pages hear of it at most every
   * BUSY_GAP_MS: each announcement makes every open page reload its view, and reading the run is what the
   * dashboard costs the agents; a change after a quiet spell, and a person's own control (`now`), are told at once.
   */
  poll(now = false): void {
    if (this.busy) return;
    this.busy = true;
    try {
      const stamp = this.look();
      if (stamp === this.last) return;
      // Not yet: `last` stays, so a later look still sees this change and tells it.
      if (!now && performance.now() - this.announcedAt < BUSY_GAP_MS) return;
      this.last = stamp;
      this.announcedAt = performance.now();
      const head = this.project.existingStore()?.audit.head() ?? -1;
      // A page shows the latest events: a burst (eight agents draining a queue) is not read entry by entry.
      this.watch.skipTo(head + 1 - FEED_EVENTS);
      const events = this.watch.poll();
      // Spend and context as the hooks measured them, when they moved (hosts other than Claude Code report none).
      const runId = readRun(this.project.existingStore())?.runId;
      const usage = runId ? this.watch.usage(runId) : undefined;
      if (usage) events.push(usage);
      const change: Change = { stamp, head, events };
      // Alerts are read by the status view, never fired here: watching changes nothing, and an alert fires (with
      // the user's command) at the agent's next counted loki_status, under the server's own settings.
      for (const l of this.listeners) l(change);
    } catch (err) {
      log.warn('dashboard: reading the run for live updates failed:', err);
    } finally {
      this.busy = false;
    }
  }

  /**
   * The watch's stamp, and the hooks' last update: usage (spend, context) is written without an audit entry, and
   * the context gauge moves with it.
   */
  look(): string {
    const hooks = this.project.existingStore()?.records.read(HOOK_STATE_FILE, HOOK_STATE_RECORD);
    return `${changeStamp(this.project)}|${hooks?.updatedAt ?? ''}`;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }
}
