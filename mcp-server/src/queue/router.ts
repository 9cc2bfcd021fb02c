/**
 * Which way a process's queue changes go. The first process that needs the queue becomes its owner (listens on
 * the owner address and applies everyone's changes in batches, owner.ts); later ones connect to it as clients
 * (client.ts). When the owner vanishes (exit, SIGKILL), its clients retry their unanswered requests: they elect
 * a new owner among themselves, or fall back to direct mode. Direct mode, the behaviour before the owner
 * existed, takes the queue lock in this process for each change; it is used when listening is impossible,
 * when the owner speaks another protocol version, and always with LOKI_QUEUE_OWNER=off.
 *
 * A retried request is safe: complete and fail are idempotent with their token, and each claim carries a
 * client-chosen request id (its claim token), so a retried claim returns the task the first attempt got.
 */
import fs from 'node:fs';
import { log } from '../log.js';
import type { Task } from '../domain/tasks.js';
import { OwnerLostError, QueueClient } from './client.js';
import { QueueOwner } from './owner.js';
import { asRetry, withClaimIds, type OpOutcome, type QueueOp } from './protocol.js';
import type { QueueLimits, TaskQueue } from './queue.js';

type Role = { kind: 'owner'; owner: QueueOwner } | { kind: 'client'; client: QueueClient } | { kind: 'direct' };

/** After failing to reach or become an owner, work directly for this long before trying again. */
const DIRECT_RETRY_MS = 5_000;
/** Elections tried for one request before it is applied directly. */
const MAX_ELECTIONS = 4;

/** LOKI_QUEUE_OWNER: "off" (also 0, false, no) turns the owner off; unset, "on", 1, true, yes leave it on. */
export function queueOwnerEnabled(value: string | undefined): boolean {
  const v = (value ?? '').trim().toLowerCase();
  if (['off', '0', 'false', 'no'].includes(v)) return false;
  if (!['', 'on', '1', 'true', 'yes', 'auto'].includes(v)) {
    process.emitWarning(`loki: LOKI_QUEUE_OWNER="${value}" is not understood; use "off" to disable the queue owner. Leaving it on.`, { code: 'LOKI_QUEUE_OWNER' });
  }
  return true;
}

export class QueueRouter {
  private role: Promise<Role> | undefined;
  /** The owner this process runs, once elected (for servingOthers, which cannot wait). */
  private owned: QueueOwner | undefined;
  private directUntil = 0;
  private closed = false;

  /** `address` undefined: direct mode only. `key` gives the project's owner key (owner-key.ts). */
  constructor(
    private readonly queue: TaskQueue,
    private readonly address: string | undefined,
    private readonly limits: () => QueueLimits,
    private readonly actor: string,
    private readonly key: () => string,
  ) {}

  /** Apply `op` (claim, complete or fail) by whichever way is available; resolves with its result. */
  async run<T>(op: QueueOp): Promise<T> {
    let current: QueueOp = withClaimIds({ ...op, limits: op.limits ?? this.limits(), actor: op.actor ?? this.actor });
    for (let election = 0; ; election++) {
      const role = election >= MAX_ELECTIONS ? ({ kind: 'direct' } as const) : await this.currentRole();
      let outcome: OpOutcome;
      if (role.kind === 'owner') {
        outcome = await role.owner.submit(current);
      } else if (role.kind === 'client') {
        try {
          outcome = await role.client.apply(current);
        } catch (err) {
          if (!(err instanceof OwnerLostError)) throw err;
          // Unknown outcome: elect again and retry; the retry finds what the first attempt did.
          log.debug(`queue: ${err.message}; retrying ${current.op}`);
          this.forget(role);
          current = asRetry(current);
          continue;
        }
        if (!outcome.ok && outcome.error.name === 'QueueProtocolError') {
          log.warn(`queue: ${outcome.error.message}; working without the queue owner`);
          this.forget(role, Number.POSITIVE_INFINITY);
          continue;
        }
        this.observe(outcome);
      } else {
        const [direct] = await this.queue.apply([current]);
        outcome = direct!;
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.result as T;
    }
  }

  /**
   * Become or reach the queue owner now, in the background, if not done yet: a server does this when its agent's
   * turn starts (loki_status), so the first claim does not wait for an election. Never throws.
   */
  prepare(): void {
    if (!this.role && this.address && !this.closed) void this.currentRole();
  }

  /** The owner's pid when this process is connected to one (diagnostics and tests). */
  async ownerPid(): Promise<number | undefined> {
    const role = await this.currentRole();
    if (role.kind === 'owner') return process.pid;
    if (role.kind === 'client') return (await role.client.hello()).pid;
    return undefined;
  }

  /** This process owns the queue and other processes are connected to it. */
  servingOthers(): boolean {
    return this.owned?.serving ?? false;
  }

  /** Stop owning or using the owner (Project.close). */
  close(): void {
    this.closed = true;
    const role = this.role;
    this.role = undefined;
    // At once, not after a turn of the event loop: Project.close lets go of the locks right after this.
    this.owned?.close();
    this.owned = undefined;
    void role?.then((r) => {
      if (r.kind === 'owner') r.owner.close();
      else if (r.kind === 'client') r.client.close();
    });
  }

  private currentRole(): Promise<Role> {
    if (!this.role || (this.directUntil > 0 && Date.now() >= this.directUntil)) {
      this.directUntil = 0;
      this.role = this.elect();
    }
    return this.role;
  }

  private forget(role: Role, directForMs = 0): void {
    if (role.kind === 'client') role.client.close();
    if (directForMs > 0) {
      this.role = Promise.resolve({ kind: 'direct' });
      this.directUntil = Date.now() + directForMs;
    } else {
      this.role = undefined;
    }
  }

  private async elect(): Promise<Role> {
    if (!this.address || this.closed) return { kind: 'direct' };
    let key: string;
    try {
      key = this.key();
    } catch (err) {
      return this.directForAWhile(err as Error);
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return { kind: 'client', client: await QueueClient.connect(this.address, key) };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Refused or missing: nobody owns the queue. Anything else (a timeout, permissions): work directly.
        if (code !== 'ECONNREFUSED' && code !== 'ENOENT') return this.directForAWhile(err as Error);
      }
      try {
        const owner = await QueueOwner.listen(this.address, this.queue, key);
        this.owned = owner;
        log.debug(`queue: this process (${process.pid}) owns the queue`);
        return { kind: 'owner', owner };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE') return this.directForAWhile(err as Error);
        // Someone else just became the owner (or, with a socket file, a dead one left it): connect again.
        if (process.platform !== 'linux' && process.platform !== 'win32') removeStaleSocket(this.address);
      }
    }
    return this.directForAWhile(new Error('no owner could be reached or started'));
  }

  private directForAWhile(err: Error): Role {
    log.debug(`queue: working without the queue owner for now (${err.message})`);
    this.directUntil = Date.now() + DIRECT_RETRY_MS;
    return { kind: 'direct' };
  }

  /** Keep this process's view current with what the owner wrote for it (its own leases, for renewals). */
  private observe(outcome: OpOutcome): void {
    if (!outcome.ok) return;
    const r = outcome.result as { task?: Task | null; next?: { task?: Task | null } | null };
    const tasks = [r.task, r.next?.task].filter((t): t is Task => !!t && typeof t === 'object' && typeof t.id === 'string');
    this.queue.observe(tasks);
  }
}

/** A socket file nobody answered on (its owner died). Removing a live one only costs a second owner. */
function removeStaleSocket(file: string): void {
  try {
    if (fs.lstatSync(file).isSocket()) fs.unlinkSync(file);
  } catch {
    /* gone already */
  }
}
