/**
 * The queue owner's wire protocol, as pure functions and types (no sockets here: owner.ts and client.ts do the
 * I/O). Processes sharing a project's `.loki/` send their queue changes (claim, complete, fail) to one of them,
 * the owner, which applies everything that arrived together under one queue-lock acquisition (group commit).
 *
 * Framing: newline-delimited JSON, one request or reply per line.
 *   request  {"v":1,"key":"…","id":7,"op":{...QueueOp}}  or {"v":1,"key":"…","id":7,"hello":true} (who owns it?)
 *   reply    {"id":7,"ok":true,"result":...}            or {"id":7,"ok":false,"error":{"name","message"}}
 * A request whose `v` the owner does not speak is answered with a QueueProtocolError; the client then works in
 * direct mode (takes the queue lock itself), so two loki-mode versions on one project still work together.
 *
 * `key` is the project's owner key (`.loki/locks/queue-owner.key`, mode 0600, created once): a Linux abstract
 * socket has no file permissions, so anyone on the machine could connect; only processes that can read the
 * project's `.loki/` can make the owner do anything.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { RunState } from '../run/records.js';
import type { ClaimOptions, QueueLimits } from './queue.js';

export const PROTOCOL_VERSION = 1;
/** A request or reply longer than this is refused (task records are bounded well below it). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

/**
 * Identifies one logical claim across retries: the claim token the task will carry. A claim retried after the
 * owner vanished (`retry: true`) first looks for a task the same agent already holds with this token.
 */
export interface ClaimId {
  token: string;
  retry: boolean;
}

export interface ClaimStep {
  opts: ClaimOptions;
  run: RunState | undefined;
  claimId?: ClaimId | undefined;
}

/** A queue change, as applied by TaskQueue.apply (locally or in the owner). */
export type QueueOp = (
  | ({ op: 'claim' } & ClaimStep)
  | { op: 'complete'; id: string; token: string; summary: string; evidence: string[]; next?: ClaimStep | undefined }
  | { op: 'fail'; id: string; token: string; error: string }
) & {
  /** The requesting process's limits (its configuration); the owner's own when absent. */
  limits?: QueueLimits | undefined;
  /** Who the audit entry names (the requesting process's actor). */
  actor?: string | undefined;
};

export type OpOutcome = { ok: true; result: unknown } | { ok: false; error: Error };

export interface WireRequest {
  v: number;
  key: string;
  id: number;
  op?: QueueOp;
  hello?: true;
}

export type WireReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { name: string; message: string } };

/** Hello answer: who owns the queue. */
export interface OwnerInfo {
  pid: number;
  protocol: number;
}

export class QueueProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueProtocolError';
  }
}

/**
 * Where a project's queue owner listens. Linux: an abstract socket (no file, so no stale socket after a crash
 * and no 108-byte path limit), named by a digest of the canonical `.loki` path. Windows: a named pipe. Other
 * systems: a socket file under the temp directory, named the same way.
 */
export function ownerAddress(lokiRoot: string, platform: NodeJS.Platform, tmpDir: string): string {
  const digest = crypto.createHash('sha256').update(lokiRoot).digest('hex').slice(0, 24);
  const name = `loki-queue-${digest}`;
  if (platform === 'linux') return `\0${name}`;
  if (platform === 'win32') return `\\\\?\\pipe\\${name}`;
  return path.join(tmpDir, `${name}.sock`);
}

/** Random bytes for claim tokens, drawn 4 KiB at a time (one call to the generator per token cost more than the token). */
const tokenBytes = { pool: Buffer.alloc(0), used: 0 };
const TOKEN_BYTES = 12;

/** A fresh claim token: 24 hex characters from the system's cryptographic generator. */
export function newClaimToken(): string {
  if (tokenBytes.used + TOKEN_BYTES > tokenBytes.pool.length) {
    tokenBytes.pool = crypto.randomBytes(4096);
    tokenBytes.used = 0;
  }
  const token = tokenBytes.pool.toString('hex', tokenBytes.used, tokenBytes.used + TOKEN_BYTES);
  tokenBytes.used += TOKEN_BYTES;
  return token;
}

const TOKEN_PATTERN = /^[0-9a-f]{16,64}$/;

export function checkClaimToken(token: string): void {
  if (!TOKEN_PATTERN.test(token)) throw new QueueProtocolError('a claim request id must be 16 to 64 lowercase hex characters');
}

/** The same op marked as a retry of an attempt whose outcome is unknown (its claims look for what they got). */
export function asRetry(op: QueueOp): QueueOp {
  if (op.op === 'claim') return { ...op, claimId: op.claimId && { ...op.claimId, retry: true } };
  if (op.op === 'complete' && op.next) return { ...op, next: { ...op.next, claimId: op.next.claimId && { ...op.next.claimId, retry: true } } };
  return op;
}

/** Give every claim in `op` a client-chosen token, so the request can be retried safely. */
export function withClaimIds(op: QueueOp, token: () => string = newClaimToken): QueueOp {
  if (op.op === 'claim' && !op.claimId) return { ...op, claimId: { token: token(), retry: false } };
  if (op.op === 'complete' && op.next && !op.next.claimId) return { ...op, next: { ...op.next, claimId: { token: token(), retry: false } } };
  return op;
}

export function encodeLine(message: WireRequest | WireReply): string {
  return `${JSON.stringify(message)}\n`;
}

export function errorToWire(err: unknown): { name: string; message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

/** Rebuild an error sent over the wire; its name is kept, so expected errors stay expected (errors.ts). */
export function errorFromWire(e: { name: string; message: string }): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

const OPS = new Set(['claim', 'complete', 'fail']);

/** Check the shape and the key of a decoded request (the owner trusts nothing it did not read itself). */
export function parseRequest(value: unknown, key: string): WireRequest {
  if (!value || typeof value !== 'object') throw new QueueProtocolError('a request must be a JSON object');
  const r = value as Partial<WireRequest>;
  if (typeof r.id !== 'number') throw new QueueProtocolError('a request needs a numeric id');
  if (r.v !== PROTOCOL_VERSION) throw new QueueProtocolError(`the queue owner speaks protocol ${PROTOCOL_VERSION}, the request ${String(r.v)}`);
  if (typeof r.key !== 'string' || !sameKey(r.key, key)) {
    throw new QueueProtocolError('the request does not carry this project\'s queue owner key (.loki/locks/queue-owner.key)');
  }
  if (r.hello === true) return { v: r.v, key: r.key, id: r.id, hello: true };
  const op = r.op as { op?: unknown } | undefined;
  if (!op || typeof op !== 'object' || !OPS.has(op.op as string)) throw new QueueProtocolError('a request needs an op: claim, complete or fail');
  return r as WireRequest;
}

/** A fresh owner key: 32 random bytes, hex. */
export function newOwnerKey(): string {
  return crypto.randomBytes(32).toString('hex');
}

export function isOwnerKey(text: string): boolean {
  return /^[0-9a-f]{64}$/.test(text);
}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function parseReply(value: unknown): WireReply {
  const r = value as Partial<WireReply> | null;
  if (!r || typeof r !== 'object' || typeof r.id !== 'number' || typeof r.ok !== 'boolean') throw new QueueProtocolError('malformed reply from the queue owner');
  return r as WireReply;
}

/** Splits a byte stream into lines; keeps the unfinished tail for the next chunk. */
export class LineSplitter {
  private tail = '';

  /** The complete lines in `chunk` (and what was left over before it). Throws past MAX_LINE_BYTES. */
  push(chunk: string): string[] {
    const text = this.tail + chunk;
    const parts = text.split('\n');
    this.tail = parts.pop() ?? '';
    if (this.tail.length > MAX_LINE_BYTES) throw new QueueProtocolError(`a line longer than ${MAX_LINE_BYTES} bytes`);
    return parts.filter((l) => l.length > 0);
  }
}
