/**
 * A connection to the queue owner (owner.ts): sends ops as newline-delimited JSON and matches the replies.
 * When the connection closes or fails, every request still waiting is rejected with OwnerLostError: its outcome
 * is unknown, and the caller retries it (claims carry a request id, complete and fail are idempotent).
 */
import type net from 'node:net';
import {
  LineSplitter,
  PROTOCOL_VERSION,
  encodeLine,
  errorFromWire,
  parseReply,
  type OpOutcome,
  type OwnerInfo,
  type QueueOp,
  type WireRequest,
} from './protocol.js';

export class OwnerLostError extends Error {
  constructor(reason: string) {
    super(`the queue owner went away (${reason})`);
    this.name = 'OwnerLostError';
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** How long to wait for an answer before giving the owner up for lost (it waits at most 15 s for the lock). */
export const REPLY_TIMEOUT_MS = 60_000;

export class QueueClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private lost: OwnerLostError | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly key: string,
  ) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.unref();
    const lines = new LineSplitter();
    socket.on('data', (chunk: string) => {
      try {
        for (const line of lines.push(chunk)) this.receive(line);
      } catch (err) {
        this.fail(`bad reply: ${(err as Error).message}`);
      }
    });
    socket.on('error', (err) => this.fail(err.message));
    socket.on('close', () => this.fail('connection closed'));
  }

  /**
   * Connect to the owner at `address`, speaking with the project's owner `key`; rejects with the connect error
   * (ECONNREFUSED, ENOENT: no owner).
   */
  static connect(address: string, key: string, timeoutMs = 2_000): Promise<QueueClient> {
    return new Promise((resolve, reject) => {
      // node:net is loaded on first use: most processes that load the queue (the hooks) never connect.
      const socket = process.getBuiltinModule('node:net').connect(address);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(Object.assign(new Error(`no answer from the queue owner within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new QueueClient(socket, key));
      });
    });
  }

  get alive(): boolean {
    return this.lost === undefined;
  }

  /** Apply `op` through the owner. Resolves with its outcome; rejects with OwnerLostError when the owner vanished. */
  async apply(op: QueueOp): Promise<OpOutcome> {
    try {
      return { ok: true, result: await this.send({ v: PROTOCOL_VERSION, key: this.key, id: 0, op }) };
    } catch (err) {
      if (err instanceof OwnerLostError) throw err;
      return { ok: false, error: err as Error };
    }
  }

  /** Who owns the queue (its pid). */
  async hello(): Promise<OwnerInfo> {
    return (await this.send({ v: PROTOCOL_VERSION, key: this.key, id: 0, hello: true })) as OwnerInfo;
  }

  close(): void {
    this.socket.destroy();
  }

  private send(req: WireRequest): Promise<unknown> {
    if (this.lost) return Promise.reject(this.lost);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(`no reply within ${REPLY_TIMEOUT_MS / 1000} s`);
      }, REPLY_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      // A request in flight keeps the process alive until it is answered.
      this.socket.ref();
      this.socket.write(encodeLine({ ...req, id }));
    });
  }

  private receive(line: string): void {
    const reply = parseReply(JSON.parse(line));
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.settle(reply.id, p);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(errorFromWire(reply.error));
  }

  private settle(id: number, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(id);
    if (this.pending.size === 0) this.socket.unref();
  }

  private fail(reason: string): void {
    if (!this.lost) this.lost = new OwnerLostError(reason);
    this.socket.destroy();
    for (const [id, p] of [...this.pending]) {
      this.settle(id, p);
      p.reject(this.lost);
    }
  }
}
