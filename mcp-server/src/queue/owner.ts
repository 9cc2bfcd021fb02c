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
import net from 'node:net';
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

/** Applies a batch of ops (TaskQueue.apply); resolves once they are durable. */
export type ApplyBatch = (ops: readonly QueueOp[]) => Promise<{ outcomes: OpOutcome[]; settle: () => Promise<void> }>;

/** Requests beyond this wait for the next batch (bounds the time one batch holds the lock). */
const MAX_BATCH = 64;

interface Waiting {
  op: QueueOp;
  done: (outcome: OpOutcome) => void;
}

export class QueueOwner {
  private readonly waiting: Waiting[] = [];
  private running = false;
  /** Batches are settled (made durable, audited, answered) in order. */
  private settling: Promise<void> = Promise.resolve();
  private readonly sockets = new Set<net.Socket>();
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    private readonly applyBatch: ApplyBatch,
  ) {
    server.on('connection', (s) => this.serve(s));
    server.on('error', (err) => log.warn(`queue owner: ${err.message}`));
  }

  /**
   * Listen on `address`; rejects with the listen error (EADDRINUSE: another process owns the queue). The server
   * does not keep the process alive: the owner lives as long as its process has other work.
   */
  static listen(address: string, applyBatch: ApplyBatch): Promise<QueueOwner> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: false });
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen(address, () => {
        server.off('error', onError);
        server.unref();
        resolve(new QueueOwner(server, applyBatch));
      });
    });
  }

  /** Apply one op with the next batch (this process's own requests come in here, without a socket). */
  submit(op: QueueOp): Promise<OpOutcome> {
    return new Promise((done) => {
      this.waiting.push({ op, done });
      if (!this.running) {
        this.running = true;
        // Let the rest of this event-loop turn's requests join the batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Stop listening and drop the connections (their clients elect a new owner and retry). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /**
   * Apply what is waiting, batch after batch. A batch's replies wait for it to be durable and audited, but the
   * next batch starts as soon as the previous one has released the queue lock: its directory fsync and audit
   * append overlap the next batch's file writes.
   */
  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        let staged: { outcomes: OpOutcome[]; settle: () => Promise<void> };
        try {
          staged = await this.applyBatch(batch.map((w) => w.op));
        } catch (err) {
          // Nothing of this batch may be acknowledged: every request gets the reason.
          const error = err instanceof Error ? err : new Error(String(err));
          this.settling = this.settling.then(() => batch.forEach((w) => w.done({ ok: false, error })));
          continue;
        }
        this.settling = this.settling.then(async () => {
          try {
            await staged.settle();
          } catch (err) {
            log.warn(`queue owner: ${(err as Error).message}`);
          }
          faultPoint('owner-before-reply');
          batch.forEach((w, i) => w.done(staged.outcomes[i]!));
        });
      }
    } finally {
      this.running = false;
    }
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
      const req = parseRequest(value);
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
