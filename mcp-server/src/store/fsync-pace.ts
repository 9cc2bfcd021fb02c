/**
 * Where an fsync runs: on the calling thread or on the thread pool.
 *
 * An fsync on the thread pool costs two thread hand-offs (the request to a pool thread, the completion back to
 * the event loop), and on a busy machine a wait for a CPU after each: on a 2-core machine running a queue owner
 * and 8 agents, that was most of the owner's involuntary context switches and ~10% of its CPU (bench/NOTES.md).
 * A disk whose fsync takes a fraction of a millisecond is cheaper to wait for in place. A slow one (a laptop
 * disk under load, a network file system) is worth handing off, so that the event loop keeps serving while it
 * works. This pacer keeps a running estimate of how long fsyncs take in place and says which to use; while
 * fsyncs are handed off it still runs one in place now and then, to notice when the disk is quick again.
 */

/** fsyncs estimated to take at most this long are run in place. */
export const QUICK_FSYNC_MS = 1;
/** While fsyncs are handed off, every PROBE_EVERY-th one runs in place to re-measure. */
export const PROBE_EVERY = 32;
/** Weight of the latest measurement in the running estimate. */
const WEIGHT = 0.25;

export class FsyncPace {
  /** Running estimate of an in-place fsync's duration, in ms. */
  private estimateMs = 0;
  private handedOff = 0;

  /** Should the next fsync run in place (true) or on the thread pool (false)? */
  inPlace(): boolean {
    if (this.estimateMs <= QUICK_FSYNC_MS) return true;
    if (++this.handedOff < PROBE_EVERY) return false;
    this.handedOff = 0;
    return true;
  }

  /** An in-place fsync took `ms`. */
  record(ms: number): void {
    this.estimateMs += (ms - this.estimateMs) * WEIGHT;
  }

  get estimate(): number {
    return this.estimateMs;
  }
}
