/**
 * The queue owner: one process per project listens on the owner address (protocol.ts) and applies the queue
 * changes of every process that connects, in batches. Everything that arrived while the previous batch was
 * being applied is applied together (group commit): one queue-lock acquisition, durable task files, one
 * directory fsync, one audit append; only then are the replies sent, so an acknowledged change survives a crash.
 *
 * The queue lock is still taken for every batch and released between batches, so writers that do not go
 * through the owner (the CLI, loki_start, checkpoints and rollback, older versions) keep working; the owner's
 * view catches up from the change feed like any process's. Correctness never depends on there being one owner:
 * two owners (a race after a crash, a socket file removed by hand) only cost throughput.
 */
import type net from 'node:net';
import { faultPoint } from '../store/fault.js';
import { log } from '../log.js';
import {
  LineSplitter,
  PROTOCOL_VERSION,
  encodeLine,
  errorToWire,
  parseRequest,
  type OpOutcome,
  type OwnerInfo,
  type QueueOp,
  type WireReply,
} from './protocol.js';
import type { StagedBatch } from './queue.js';

/** The queue as the owner uses it (TaskQueue.holdingLock and settle). */
export interface OwnedQueue {
  /** Hold the queue lock while `run` applies batches with `apply`. */
  holdingLock(run: (apply: (ops: readonly QueueOp[]) => Promise<StagedBatch>) => Promise<void>): Promise<void>;
  /** Make applied batches durable and audit them, together. */
  settle(batches: readonly StagedBatch[]): Promise<void>;
  /** Before taking the lock again: let a process that asked for it have a turn (a short, bounded wait). */
  yieldToWaiters(): Promise<void>;
  /** Another process has asked for the queue lock. */
  lockWanted(): boolean;
}

/** Requests beyond this wait for the next batch. */
const MAX_BATCH = 64;
/**
 * While requests keep coming, the owner keeps the queue lock from one batch to the next (no lock file churn,
 * no re-reading), but releases it at least this often so other writers (the CLI, loki_start, checkpoints,
 * older processes) get their turn.
 */
const HOLD_MS = 25;
/**
 * While a settle is under way, fewer requests than this wait for it to end (at most SETTLE_WAIT_MS) before they
 * are applied, so that more of them share one batch's lock turn, feed append, directory fsync and audit append.
 * A batch applied during a settle is answered only after that settle anyway; waiting adds the time the batch
 * takes to apply to those replies, and saves a settle's worth of work per batch it merges, which is what counts
 * when the owner is busy.
 */
const MIN_BATCH_WHILE_SETTLING = 3;
const SETTLE_WAIT_MS = 3;

interface Waiting {
  op: QueueOp;
  done: (outcome: OpOutcome) => void;
}

export class QueueOwner {
  private readonly waiting: Waiting[] = [];
  private running = false;
  /** Batches applied, waiting to be settled (made durable, audited) and answered, in order. */
  private readonly unsettled: { batch: Waiting[]; staged: StagedBatch | undefined; error?: unknown }[] = [];
  private settling = false;
  /** Resolves when the settle run under way ends. */
  private settleEnded: Promise<void> | undefined;
  private readonly sockets = new Set<net.Socket>();
  private closed = false;

  /** Closes at process exit, before the rest of the exit. */
  private readonly closeAtExit = () => this.close();

  private constructor(
    private readonly server: net.Server,
    private readonly queue: OwnedQueue,
    private readonly key: string,
  ) {
    server.on('connection', (s) => this.serve(s));
    server.on('error', (err) => log.warn(`queue owner: ${err.message}`));
    // A process takes tens of milliseconds to end after its exit handlers have run, and its sockets stay open
    // until then: requests clients send meanwhile wait unread, and new clients connect to a dying owner. Closing
    // them first makes the clients elect a successor at once.
    process.prependOnceListener('exit', this.closeAtExit);
  }

  /**
   * Listen on `address`, serving requests that carry `key`; rejects with the listen error (EADDRINUSE: another
   * process owns the queue). The server does not keep the process alive: the owner lives as long as its process
   * has other work.
   */
  static listen(address: string, queue: OwnedQueue, key: string): Promise<QueueOwner> {
    return new Promise((resolve, reject) => {
      const server = process.getBuiltinModule('node:net').createServer({ allowHalfOpen: false });
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(address, () => {
        server.off('error', onError);
        server.unref();
        resolve(new QueueOwner(server, queue, key));
      });
    });
  }

  /** Other processes are connected: this one serves their queue requests. */
  get serving(): boolean {
    return this.sockets.size > 0;
  }

  /** Apply one op with the next batch (this process's own requests come in here, without a socket). */
  submit(op: QueueOp): Promise<OpOutcome> {
    return new Promise((done) => {
      if (this.closed) {
        done({ ok: false, error: closedError() });
        return;
      }
      this.waiting.push({ op, done });
      if (!this.running) {
        this.running = true;
        // Let the rest of this event-loop turn's requests join the batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  /**
   * Stop listening and drop the connections (their clients elect a new owner and retry). Requests not yet
   * applied are not applied: the process is shutting down and its locks are about to be let go, so this
   * process's own callers get an error (a client's retry goes to the next owner).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.closeAtExit);
    this.server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.refuseWaiting();
  }

  private refuseWaiting(): void {
    const error = closedError();
    for (const w of this.waiting.splice(0)) w.done({ ok: false, error });
  }

  /**
   * Apply what is waiting, batch after batch, holding the queue lock for up to HOLD_MS at a time. A batch's
   * replies wait for it to be durable and audited (settleAll), but the next batch starts as soon as the
   * previous one's files are written: its directory fsync and audit append overlap the next batch.
   */
  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        let entered = false;
        try {
          await this.queue.holdingLock(async (apply) => {
            entered = true;
            const until = Date.now() + HOLD_MS;
            for (;;) {
              if (this.waiting.length < MIN_BATCH_WHILE_SETTLING) await this.settleUnderWay();
              // Closed meanwhile (shutdown lets go of the lock): apply nothing more.
              if (this.closed || this.waiting.length === 0) return;
              const batch = this.waiting.splice(0, MAX_BATCH);
              let staged: StagedBatch;
              try {
                staged = await apply(batch.map((w) => w.op));
              } catch (err) {
                this.answer(batch, undefined, err);
                throw err;
              }
              this.answer(batch, staged);
              if (Date.now() >= until) return;
              // Requests that arrived while the batch was written are read in this turn's poll phase.
              if (this.waiting.length === 0) await new Promise((resolve) => setImmediate(resolve));
              if (this.waiting.length === 0) return;
            }
          });
        } catch (err) {
          // The lock could not be taken: nothing was applied, the waiting requests get the reason.
          if (!entered) this.answer(this.waiting.splice(0), undefined, err);
          else log.warn(`queue owner: ${(err as Error).message}`);
        }
        if (this.waiting.length > 0) await this.queue.yieldToWaiters();
      }
    } finally {
      this.running = false;
    }
  }

  /** Reply to a batch once it is settled (in order), or with `error` when it was not applied. */
  private answer(batch: Waiting[], staged: StagedBatch | undefined, error?: unknown): void {
    this.unsettled.push({ batch, staged, error });
    if (!this.settling) void this.settleAll();
  }

  /**
   * Settle what has been applied, in order: every batch written since the last settle shares one directory
   * fsync and one audit append (group commit), then their requests are answered.
   */
  private async settleAll(): Promise<void> {
    this.settling = true;
    let ended!: () => void;
    this.settleEnded = new Promise((resolve) => (ended = resolve));
    try {
      while (this.unsettled.length > 0) {
        const group = this.unsettled.splice(0);
        try {
          await this.queue.settle(group.flatMap((g) => (g.staged ? [g.staged] : [])));
        } catch (err) {
          log.warn(`queue owner: ${(err as Error).message}`);
        }
        faultPoint('owner-before-reply');
        for (const g of group) {
          if (g.staged) g.batch.forEach((w, i) => w.done(g.staged!.outcomes[i]!));
          else {
            const e = g.error instanceof Error ? g.error : new Error(String(g.error));
            for (const w of g.batch) w.done({ ok: false, error: e });
          }
        }
      }
    } finally {
      this.settling = false;
      this.settleEnded = undefined;
      ended();
    }
  }

  /**
   * Wait for the settle under way (if any) to end, at most SETTLE_WAIT_MS; not while another process asks for
   * the queue lock (it would wait behind a holder doing nothing).
   */
  private async settleUnderWay(): Promise<void> {
    const ended = this.settleEnded;
    if (!ended || this.queue.lockWanted()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private serve(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    // Connected clients do not keep the owner's process alive either.
    socket.unref();
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    const lines = new LineSplitter();
    const reply = (message: WireReply) => {
      if (!socket.destroyed) socket.write(encodeLine(message));
    };
    socket.on('data', (chunk: string) => {
      let received: string[];
      try {
        received = lines.push(chunk);
      } catch (err) {
        log.warn(`queue owner: dropping a client: ${(err as Error).message}`);
        socket.destroy();
        return;
      }
      for (const line of received) this.handle(line, reply);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private handle(line: string, reply: (m: WireReply) => void): void {
    let id = -1;
    try {
      const value = JSON.parse(line) as unknown;
      if (value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'number') id = (value as { id: number }).id;
      const req = parseRequest(value, this.key);
      if (req.hello) {
        const info: OwnerInfo = { pid: process.pid, protocol: PROTOCOL_VERSION };
        reply({ id: req.id, ok: true, result: info });
        return;
      }
      void this.submit(req.op!).then((o) => reply(o.ok ? { id: req.id, ok: true, result: o.result } : { id: req.id, ok: false, error: errorToWire(o.error) }));
    } catch (err) {
      reply({ id, ok: false, error: errorToWire(err) });
    }
  }
}

function closedError(): Error {
  return new Error('the queue owner closed (the server is shutting down); nothing was changed');
}
