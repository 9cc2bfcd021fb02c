/**
 * The task queue: every operation the tools and the CLI perform. Changes happen under the `queue` lock, read the
 * tasks they change from disk, apply the pure rules of domain/tasks.ts, write the task files (atomic, durable),
 * announce them on the change feed, then record the operation in the audit log.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Phase } from '../domain/phases.js';
import {
  OPEN_STATES,
  blockTask,
  checkDependencies,
  checkHolder,
  claimTask,
  completeTask,
  countStates,
  editTask,
  effectivePhase,
  expireLease,
  failTask,
  leaseExpired,
  phaseAllows,
  pickNext,
  releaseTask,
  renewLease,
  retryTask,
  unblockTask,
  unmetDependencies,
  type Priority,
  type StateCounts,
  type Task,
  type TaskDraft,
  type TaskEdit,
  type TaskState,
} from '../domain/tasks.js';
import type { RunState } from '../run/records.js';
import { UsageError } from '../run/state.js';
import { BatchWriteError, fsyncAsync, fsyncDir, moveDirectory, openDirectory, writeFilesAtomic } from '../store/fsx.js';
import { KeptFile } from '../store/kept-file.js';
import { SparePool } from '../store/spares.js';
import { encodeRecord } from '../store/records.js';
import { checkId } from '../store/paths.js';
import type { AuditNote, Store } from '../store/store.js';
import { TaskCache } from './cache.js';
import { newClaimToken, type ClaimId, type ClaimStep, type OpOutcome, type QueueOp } from './protocol.js';
import { QUEUE_DIR, QUEUE_LOCK, TASKS_DIR, TASK_RECORD } from './records.js';

export const MAX_BATCH = 200;

/** Queues holding the queue lock between batches, with nothing half written (see releaseIdleLock). */
const idleHolders = new Set<TaskQueue>();
/** The longest the queue owner stands aside for a process that asked for the queue lock. */
const YIELD_MAX_MS = 50;
let exitHookSet = false;
function releaseIdleLocksAtExit(): void {
  for (const q of [...idleHolders]) q.releaseIdleLock();
}

export interface QueueLimits {
  leaseMinutes: number;
  maxRetries: number;
}

export interface AddResult {
  added: Task[];
  /** Ids already present with the same content (a retried call): left as they are. */
  unchanged: string[];
}

export interface ClaimOptions {
  agent: string;
  /** Only this phase (default: the current phase and earlier ones). */
  phase?: Phase | undefined;
  /** Claim this task rather than the next in order. */
  taskId?: string | undefined;
}

export interface ClaimResult {
  task: Task | null;
  token: string | null;
  /** Tasks whose leases ran out and were put back (or dead-lettered) on the way. */
  expired: string[];
  /** Why nothing was claimed. */
  reason: string | null;
}

export interface FinishResult {
  task: Task;
  /** The same token already did this: nothing changed. */
  repeated: boolean;
}

export type UpdateAction = 'release' | 'renew' | 'block' | 'unblock' | 'retry';

export interface UpdateRequest {
  id: string;
  edit: TaskEdit;
  action?: UpdateAction | undefined;
  token?: string | undefined;
  reason?: string | undefined;
}

export interface ListFilter {
  status?: readonly TaskState[] | undefined;
  phase?: Phase | undefined;
  priority?: Priority | undefined;
  limit?: number | undefined;
}

export interface QueueSummary {
  counts: StateCounts;
  total: number;
  inProgress: { id: string; title: string; agent: string; expiresAt: string; expired: boolean }[];
  next: { id: string; title: string; priority: Priority; phase: Phase } | null;
  /** Open tasks (pending, in progress, failed, blocked) of the run's current phase. */
  openInPhase: number;
  /** Ready tasks that belong to later phases. */
  laterPhases: number;
  /** Pending tasks waiting on dependencies, and those stuck behind a dead-lettered dependency. */
  waiting: number;
  stuckOnDeadLetter: string[];
}

/** The writes of one locked section. */
interface Batch {
  /** Task versions to write when the section ends, by id (the latest wins). */
  staged: Map<string, Task>;
  /** For the op being applied: the staged version each task it wrote had before (undefined: none). */
  touched: Map<string, Task | undefined> | undefined;
  /** Some task file was replaced (the directory needs an fsync). */
  wrote: boolean;
}

/**
 * A batch applied and its files written, not yet settled: TaskQueue.settle makes it durable (directory fsync)
 * and audits it; only then may its outcomes be acknowledged.
 */
export interface StagedBatch {
  outcomes: OpOutcome[];
  notes: AuditNote[];
  wrote: boolean;
}

function newBatch(): Batch {
  return { staged: new Map(), touched: undefined, wrote: false };
}

export class TaskQueue {
  private readonly cache: TaskCache;
  /** Set while a change() holds the lock: whether it wrote task files (their directory needs an fsync). */
  private batch: Batch | undefined;
  /** The queue folders exist and their creation was fsynced (once per process and queue generation). */
  private dirsDurable = false;
  /** Displaced task file versions, reused for later writes (see SparePool). */
  private spares: SparePool | undefined;
  /** The tasks folder, kept open for the directory fsync after each batch of renames. */
  private readonly tasksDir: KeptFile;

  constructor(
    private readonly store: Store,
    private readonly limits: () => QueueLimits,
  ) {
    this.cache = new TaskCache(store);
    this.tasksDir = new KeptFile(store.loki, TASKS_DIR, 'dir', openDirectory);
    if (!exitHookSet) {
      exitHookSet = true;
      process.once('exit', releaseIdleLocksAtExit);
    }
  }

  /** Let go of what this process keeps on disk for the queue (its spare task files). */
  close(): void {
    this.spares?.close();
    this.spares = undefined;
    this.cache.close();
    this.tasksDir.close();
  }

  // ---- reads ------------------------------------------------------------------------------------------------

  get(id: string): Task | undefined {
    checkId(id, 'task id');
    this.cache.refresh();
    return this.cache.get(id);
  }

  list(filter: ListFilter = {}): { tasks: Task[]; total: number } {
    this.cache.refresh();
    const matches = [...this.cache.all()]
      .filter((t) => (!filter.status || filter.status.includes(t.status)) && (!filter.phase || t.phase === filter.phase) && (!filter.priority || t.priority === filter.priority))
      .sort((a, b) => a.seq - b.seq);
    return { tasks: matches.slice(0, filter.limit ?? matches.length), total: matches.length };
  }

  summary(run: RunState | undefined, now = Date.now()): QueueSummary {
    this.cache.refresh();
    // Statuses are all a summary needs of finished tasks (their files are not read for it).
    const tasks = [...this.cache.current()];
    const lookup = (id: string) => this.cache.peek(id);
    const inProgress = tasks
      .filter((t) => t.status === 'in-progress')
      .sort((a, b) => a.seq - b.seq)
      .map((t) => ({ id: t.id, title: t.title, agent: t.lease?.agent ?? 'unknown', expiresAt: t.lease?.expiresAt ?? t.updatedAt, expired: leaseExpired(t, now) }));
    const next = pickNext(tasks, lookup, (t) => phaseAllows(t, run));
    const ready = tasks.filter((t) => unmetDependencies(t, lookup).length === 0 && (t.status === 'pending' || t.status === 'failed'));
    const waitingTasks = tasks.filter((t) => (t.status === 'pending' || t.status === 'failed') && unmetDependencies(t, lookup).length > 0);
    return {
      counts: countStates(tasks),
      total: tasks.length,
      inProgress,
      next: next ? { id: next.id, title: next.title, priority: next.priority, phase: next.phase } : null,
      openInPhase: run ? tasks.filter((t) => isOpenInPhase(t, run)).length : 0,
      laterPhases: ready.filter((t) => !phaseAllows(t, run)).length,
      waiting: waitingTasks.length,
      stuckOnDeadLetter: waitingTasks.filter((t) => t.dependencies.some((d) => lookup(d)?.status === 'dead-letter')).map((t) => t.id),
    };
  }

  /** Open tasks (pending, in progress, failed, blocked) that belong to `phase` in the run's tier. */
  openInPhase(run: RunState): Task[] {
    this.cache.refresh();
    return [...this.cache.all()].filter((t) => isOpenInPhase(t, run)).sort((a, b) => a.seq - b.seq);
  }

  // ---- changes ----------------------------------------------------------------------------------------------

  /** Add a batch; all or nothing. Ids given by the caller must be new, or name an identical task (a retry). */
  async add(drafts: readonly TaskDraft[], runId: string, defaults: { phase: Phase; source: Task['source'] }): Promise<AddResult> {
    if (drafts.length === 0) throw new UsageError('`tasks` is empty: give at least one task');
    if (drafts.length > MAX_BATCH) throw new UsageError(`at most ${MAX_BATCH} tasks per call; split the batch`);
    return this.change(
      () => this.addLocked(drafts, runId, defaults),
      (r) => (r.added.length > 0 ? { action: 'task.add', data: { ids: r.added.map((t) => t.id).slice(0, 50), count: r.added.length } } : undefined),
    );
  }

  /** The body of `add`, for callers that already hold the queue lock (loki_start seeding the queue). */
  addLocked(drafts: readonly TaskDraft[], runId: string, defaults: { phase: Phase; source: Task['source'] }): AddResult {
    const now = new Date().toISOString();
    let seq = Math.max(0, ...[...this.cache.all()].map((t) => t.seq));
    const batch = new Map<string, Task>();
    const unchanged: string[] = [];
    for (const d of drafts) {
      let id = d.id;
      if (id === undefined) {
        // Automatic ids follow the creation sequence, skipping any an agent chose by hand.
        let n = seq + 1;
        while (batch.has(`t${n}`) || this.cache.get(`t${n}`)) n++;
        id = `t${n}`;
      }
      checkId(id, 'task id');
      if (batch.has(id)) throw new UsageError(`task id "${id}" appears twice in the batch`);
      const existing = this.cache.reread(id);
      const task: Task = {
        id,
        seq: existing?.seq ?? seq + 1,
        runId,
        title: d.title.trim(),
        description: d.description?.trim() ?? '',
        priority: d.priority ?? 'medium',
        phase: d.phase ?? defaults.phase,
        dependencies: [...new Set(d.dependencies ?? [])],
        acceptance: d.acceptance ?? [],
        source: d.source ?? defaults.source,
        status: 'pending',
        lease: null,
        attempts: [],
        failures: 0,
        blockedReason: null,
        completion: null,
        deadLetteredAt: null,
        createdAt: now,
        updatedAt: now,
        rev: 0,
      };
      if (!task.title) throw new UsageError(`task ${id} has an empty title`);
      for (const dep of task.dependencies) checkId(dep, `dependency of ${id}`);
      if (existing) {
        if (sameDefinition(existing, task)) {
          unchanged.push(id);
          continue;
        }
        throw new UsageError(`task "${id}" already exists with different content: use loki_task_update to change it, or pick a new id`);
      }
      batch.set(id, task);
      seq = Math.max(seq, task.seq);
    }
    const added = [...batch.values()];
    checkDependencies(added, (id) => batch.get(id) ?? this.cache.get(id));
    this.write(added);
    return { added, unchanged };
  }

  async claim(opts: ClaimOptions, run: RunState | undefined, claimId?: ClaimId): Promise<ClaimResult> {
    return this.applyOne<ClaimResult>({ op: 'claim', opts, run, claimId });
  }

  /**
   * Complete a task the caller holds; with `next`, claim the caller's next task in the same critical section
   * (one lock and one audit append for the usual complete-then-claim step).
   */
  async complete(id: string, token: string, summary: string, evidence: string[], next?: ClaimStep): Promise<FinishResult & { next: ClaimResult | null }> {
    return this.applyOne({ op: 'complete', id, token, summary, evidence, next });
  }

  async fail(id: string, token: string, error: string): Promise<FinishResult> {
    return this.applyOne<FinishResult>({ op: 'fail', id, token, error });
  }

  private async applyOne<T>(op: QueueOp): Promise<T> {
    const [outcome] = await this.apply([op]);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.result as T;
  }

  /**
   * Apply queue changes (claim, complete, fail) as one group commit: one queue-lock acquisition for all of them,
   * the task files written durably (their fsyncs in parallel), one feed append, one directory fsync, one audit
   * append (each entry naming its own actor). Each op succeeds or fails on its own (a failed op changes
   * nothing); the promise resolves once everything is on disk, so a caller may acknowledge them. Rejects when
   * the lock cannot be taken or the files cannot be written (then no op may be acknowledged).
   */
  async apply(ops: readonly QueueOp[]): Promise<OpOutcome[]> {
    const staged = await this.applyStaged(ops);
    await this.settle([staged]);
    return staged.outcomes;
  }

  /**
   * The first half of apply(): resolves once the task files are written and the queue lock is released. Nothing
   * may be acknowledged before settle() has made the batch durable and audited it; the next batch may start
   * before (the queue owner pipelines them, and settles several at once).
   */
  async applyStaged(ops: readonly QueueOp[]): Promise<StagedBatch> {
    return this.holdingLock((applyHeld) => applyHeld(ops));
  }

  /**
   * Hold the queue lock for a run of batches (the queue owner's group commit): `run` gets `applyHeld`, which
   * applies one batch as applyStaged does, without taking the lock again. The lock is released when `run`
   * returns (or throws); while it is held, nobody else writes the queue, so the view needs no re-reading.
   */
  async holdingLock<T>(run: (applyHeld: (ops: readonly QueueOp[]) => Promise<StagedBatch>) => Promise<T>): Promise<T> {
    return this.store.locks.withLock(QUEUE_LOCK, async ({ recovered }) => {
      this.cache.prepareWrite(recovered);
      idleHolders.add(this);
      try {
        return await run(async (ops) => {
          idleHolders.delete(this);
          const staged = await this.applyHeld(ops);
          // Only after a batch whose files are all written and announced is the lock safe to let go at exit.
          idleHolders.add(this);
          return staged;
        });
      } finally {
        idleHolders.delete(this);
        this.cache.endWrite();
      }
    });
  }

  /** Another process asked for the queue lock (a checkpoint, the CLI, a process not going through the owner). */
  lockWanted(): boolean {
    return this.store.locks.wanted(QUEUE_LOCK);
  }

  /**
   * Another process asked for the queue lock (a checkpoint, the CLI, a process not going through the owner):
   * wait until it has had its turn, at most YIELD_MAX_MS, before the owner takes the lock again.
   */
  async yieldToWaiters(): Promise<void> {
    const until = Date.now() + YIELD_MAX_MS;
    while (Date.now() < until && this.lockWanted()) await sleep(1);
  }

  /**
   * The process is exiting while this queue holds the lock between batches (the queue owner waits a moment for
   * more requests): every file it wrote is renamed and announced, so the lock is released rather than left for
   * the next holder to take over from a dead process, which would make everyone reload the queue from its files.
   */
  releaseIdleLock(): void {
    if (idleHolders.delete(this)) this.store.locks.releaseNow(QUEUE_LOCK);
  }

  private async applyHeld(ops: readonly QueueOp[]): Promise<StagedBatch> {
    const outcomes: OpOutcome[] = [];
    const notes: AuditNote[] = [];
    const batch = newBatch();
    await this.section(batch, () => {
      for (const op of ops) {
        batch.touched = new Map();
        try {
          const { result, notes: made } = this.applyLocked(op);
          outcomes.push({ ok: true, result });
          for (const n of made) notes.push(op.actor === undefined ? n : { ...n, actor: op.actor });
        } catch (err) {
          this.undo(batch);
          outcomes.push({ ok: false, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
    });
    return { outcomes, notes, wrote: batch.wrote };
  }

  private applyLocked(op: QueueOp): { result: unknown; notes: AuditNote[] } {
    const limits = op.limits ?? this.limits();
    switch (op.op) {
      case 'claim': {
        const { result, repeated } = this.claimLocked(op, limits);
        const note = repeated ? undefined : claimNote(result, op.opts.agent);
        return { result, notes: note ? [note] : [] };
      }
      case 'complete': {
        checkId(op.id, 'task id');
        const task = this.mustRead(op.id);
        const holder = checkHolder(task, op.token, 'completed');
        let finished: FinishResult;
        if (!holder.ok) {
          if (!holder.repeat) throw new UsageError(holder.reason);
          finished = { task, repeated: true };
        } else {
          const done = completeTask(task, op.token, Date.now(), op.summary, op.evidence);
          this.write([done]);
          finished = { task: done, repeated: false };
        }
        const notes: AuditNote[] = [];
        if (!finished.repeated) {
          const c = finished.task.completion;
          notes.push({ action: 'task.complete', target: op.id, data: { agent: c?.agent, summary: c?.summary.slice(0, 500), evidence: c?.evidence.slice(0, 10) } });
        }
        let next: ClaimResult | null = null;
        if (op.next) {
          const claimed = this.claimLocked(op.next, limits);
          next = claimed.result;
          const note = claimed.repeated ? undefined : claimNote(next, op.next.opts.agent);
          if (note) notes.push(note);
        }
        return { result: { ...finished, next }, notes };
      }
      case 'fail': {
        checkId(op.id, 'task id');
        const task = this.mustRead(op.id);
        const holder = checkHolder(task, op.token, 'failed');
        if (!holder.ok) {
          if (holder.repeat) return { result: { task, repeated: true }, notes: [] };
          throw new UsageError(holder.reason);
        }
        const failed = failTask(task, op.token, Date.now(), op.error, 'failed', limits.maxRetries);
        this.write([failed]);
        const note: AuditNote = { action: failed.status === 'dead-letter' ? 'task.dead-letter' : 'task.fail', target: op.id, data: { failures: failed.failures, error: op.error.slice(0, 500) } };
        return { result: { task: failed, repeated: false }, notes: [note] };
      }
      default:
        throw new UsageError(`unknown queue operation ${(op as { op: string }).op}`);
    }
  }

  private claimLocked(step: ClaimStep, limits: QueueLimits): { result: ClaimResult; repeated: boolean } {
    const { opts, run, claimId } = step;
    if (opts.taskId !== undefined) checkId(opts.taskId, 'taskId');
    const leaseMs = limits.leaseMinutes * 60_000;
    const now = Date.now();
    if (claimId?.retry) {
      // The first attempt's outcome is unknown (its owner vanished): if it went through, return what it got.
      const mine = this.heldWithToken(claimId.token, opts.agent);
      if (mine) return { result: { task: mine, token: claimId.token, expired: [], reason: null }, repeated: true };
    }
    const expired = this.expireLeases(now, limits.maxRetries);
    const lookup = (id: string) => this.cache.peek(id);
    const allowed = (t: Task) => (opts.phase ? effectivePhase(t.phase, run?.tier ?? 'complex') === opts.phase : phaseAllows(t, run));
    for (;;) {
      let candidate: Task | undefined;
      if (opts.taskId !== undefined) {
        candidate = this.cache.reread(opts.taskId);
        if (!candidate) throw new UsageError(`no task "${opts.taskId}": loki_task_list shows the ids`);
        const why = whyNotClaimable(candidate, lookup);
        if (why) return { result: { task: null, token: null, expired, reason: why }, repeated: false };
      } else {
        candidate = pickNext(this.cache.inClaimOrder(), lookup, allowed, true);
        if (!candidate) return { result: { task: null, token: null, expired, reason: this.nothingReady(run, opts.phase) }, repeated: false };
        // The view may be behind (a writer died before announcing): decide on the file itself.
        const fresh = this.cache.reread(candidate.id);
        if (!fresh || fresh.rev !== candidate.rev || !allowed(fresh)) continue;
      }
      const token = claimId?.token ?? newClaimToken();
      const claimed = claimTask(candidate, opts.agent, token, now, leaseMs);
      this.write([claimed]);
      return { result: { task: claimed, token, expired, reason: null }, repeated: false };
    }
  }

  /** The in-progress task `agent` holds with `token`, read from disk (the view's leases may lag). */
  private heldWithToken(token: string, agent: string): Task | undefined {
    for (const t of [...this.cache.inProgress()]) {
      const fresh = this.cache.reread(t.id);
      if (fresh?.status === 'in-progress' && fresh.lease?.token === token && fresh.lease.agent === agent) return fresh;
    }
    return undefined;
  }

  /** Take in tasks another process (the queue owner) wrote on our behalf, so this view knows our own leases. */
  observe(tasks: readonly Task[]): void {
    this.cache.observe(tasks);
  }

  /**
   * Extend the leases `agent` holds once half of a lease has passed (loki_status calls this every turn, so an
   * agent that keeps working keeps its tasks, and one that died loses them a lease later). Returns the ids.
   */
  async renewHeldBy(agent: string, now = Date.now()): Promise<string[]> {
    const leaseMs = this.limits().leaseMinutes * 60_000;
    const due = (t: Task) => t.status === 'in-progress' && t.lease?.agent === agent && !leaseExpired(t, now) && Date.parse(t.lease.expiresAt) - now < leaseMs / 2;
    this.cache.refresh();
    // This process wrote its own claims, so its view of them is complete: no need to read other tasks.
    if (![...this.cache.inProgress()].some(due)) return [];
    return this.change(
      () => {
        const renewed = [...this.cache.inProgress()].filter(due).map((t) => this.cache.reread(t.id)).filter((t): t is Task => t !== undefined && due(t)).map((t) => renewLease(t, now, leaseMs));
        this.write(renewed);
        return renewed.map((t) => t.id);
      },
      (ids) => (ids.length > 0 ? { action: 'task.renew', data: { agent, ids } } : undefined),
    );
  }

  async update(req: UpdateRequest): Promise<Task> {
    checkId(req.id, 'task id');
    for (const dep of req.edit.dependencies ?? []) checkId(dep, 'dependency');
    const { leaseMinutes } = this.limits();
    return this.change(
      (): Task => {
        const now = Date.now();
        let task = this.mustRead(req.id);
        const hasEdit = Object.values(req.edit).some((v) => v !== undefined);
        if (hasEdit) {
          if (task.status === 'completed') throw new UsageError(`${task.id} is completed and stays as it was done; add a follow-up task instead`);
          task = editTask(task, now, req.edit);
          if (req.edit.dependencies) {
            const edited = task;
            checkDependencies([edited], (id) => (id === edited.id ? edited : this.cache.get(id)));
          }
        }
        if (req.action) task = applyAction(task, req, now, leaseMinutes * 60_000);
        else if (!hasEdit) throw new UsageError('nothing to change: give fields to edit and/or an `action`');
        this.write([task]);
        return task;
      },
      (t) => ({ action: `task.${req.action ?? 'edit'}`, target: t.id, data: { fields: Object.keys(req.edit).filter((k) => req.edit[k as keyof TaskEdit] !== undefined), status: t.status, reason: req.reason ?? null } }),
    );
  }

  /**
   * Fill the queue of a run from its spec. A new run (`fresh`) starts with an empty queue: tasks of earlier
   * runs move to `runs/<their runId>/queue`. Resuming (`fresh: false`) queues only when the queue is empty.
   * Not audited here: the caller's run.start / run.resume entry records the count.
   */
  async seed(runId: string, drafts: readonly TaskDraft[], opts: { fresh: boolean }): Promise<AddResult & { archivedTo: string | null }> {
    return this.change(
      () => {
        let archivedTo: string | null = null;
        const previous = this.cache.all().next().value as Task | undefined;
        // Tasks of another run are set aside even when resuming: a crash between recording a new run and
        // seeding it leaves the previous run's queue in place.
        if (previous && (opts.fresh || previous.runId !== runId)) {
          archivedTo = this.archiveQueue(previous.runId);
        } else if (previous) {
          return { added: [], unchanged: [], archivedTo };
        }
        if (drafts.length === 0) return { added: [], unchanged: [], archivedTo };
        return { ...this.addLocked(drafts, runId, { phase: 'DEVELOPMENT', source: { kind: 'spec', section: null } }), archivedTo };
      },
      () => undefined,
    );
  }

  /** Move the whole queue folder aside, under the run it belonged to. */
  private archiveQueue(runId: string): string {
    const base = `runs/${checkId(runId, 'run id')}/queue`;
    let target = base;
    for (let n = 2; this.store.exists(target); n++) target = `${base}-${n}`;
    // Our spares would move with the folder; remove them first.
    this.spares?.clear();
    moveDirectory(this.store.loki, QUEUE_DIR, target);
    this.dirsDurable = false;
    this.cache.invalidate();
    this.cache.refresh();
    return target;
  }

  /**
   * Run `fn` under the queue lock with an up-to-date view. The lock is held only for reading and writing the
   * task files (each fsynced before its rename); the directory fsync and the audit entry follow once it is
   * released, before the caller hears of success, so claimers queue for as short a time as possible.
   */
  async change<T>(fn: () => T, note: (result: T) => AuditNote | AuditNote[] | undefined): Promise<T> {
    const batch = newBatch();
    const result = await this.locked(batch, fn);
    const n = note(result);
    await this.finish(batch.wrote, n === undefined ? [] : Array.isArray(n) ? n : [n]);
    return result;
  }

  /**
   * Under the queue lock: catch up, run `fn` (its writes are staged: the view sees them at once, the disk at the
   * end), then write every staged task file in one go and announce them on the feed. If `fn` throws, nothing
   * it staged is written.
   */
  private async locked<T>(batch: Batch, fn: () => T): Promise<T> {
    return this.store.locks.withLock(QUEUE_LOCK, async ({ recovered }) => {
      this.cache.prepareWrite(recovered);
      try {
        return await this.section(batch, fn);
      } finally {
        this.cache.endWrite();
      }
    });
  }

  /** One locked section: run `fn` with its writes staged, then write them (none of them if `fn` throws). */
  private async section<T>(batch: Batch, fn: () => T): Promise<T> {
    this.batch = batch;
    let result: T;
    try {
      result = fn();
    } catch (err) {
      batch.staged.clear();
      this.cache.discardStaged();
      throw err;
    } finally {
      this.batch = undefined;
    }
    await this.flush(batch);
    return result;
  }

  /** Write the staged task files (fsyncs in parallel, then the renames) and announce them on the feed. */
  private async flush(batch: Batch): Promise<void> {
    const tasks = [...batch.staged.values()];
    if (tasks.length === 0) return;
    // Renames may still be under way when a shutdown releases every lock: keep this one until they are done.
    this.store.locks.pin(QUEUE_LOCK);
    try {
      await this.writeStaged(tasks, batch);
    } finally {
      this.store.locks.unpin(QUEUE_LOCK);
    }
  }

  private async writeStaged(tasks: Task[], batch: Batch): Promise<void> {
    try {
      // The folder is resolved (and checked) once per batch; each file is still written without following links.
      const dir = this.store.loki.child(TASKS_DIR, true);
      if (!this.dirsDurable) {
        // New (or newly archived) queue folders must survive a power loss too, not only the files in them.
        fsyncDir(this.store.loki.root);
        fsyncDir(path.join(this.store.loki.root, QUEUE_DIR));
        this.dirsDurable = true;
      }
      if (this.spares?.dir !== dir.root) {
        this.spares?.close();
        this.spares = new SparePool(dir.root);
      }
      await writeFilesAtomic(
        dir,
        tasks.map((t) => ({ rel: `${t.id}.json`, data: encodeRecord(TASK_RECORD, t) })),
        this.spares,
      );
      batch.wrote = true;
      this.cache.written(tasks);
    } catch (err) {
      // Whatever reached the disk is announced; the rest is forgotten; everyone reloads (feed reset).
      const renamed = new Set(err instanceof BatchWriteError ? err.renamed : []);
      const done = tasks.filter((t) => renamed.has(`${t.id}.json`));
      batch.wrote ||= done.length > 0;
      try {
        this.cache.written(done);
      } finally {
        this.cache.discardStaged();
        this.cache.resetQuietly();
      }
      throw err instanceof BatchWriteError ? err.error : err;
    }
  }

  /** Take back what the current op of a batch staged (it failed). */
  private undo(batch: Batch): void {
    if (!batch.touched) return;
    for (const [id, before] of batch.touched) {
      if (before) batch.staged.set(id, before);
      else batch.staged.delete(id);
    }
    this.cache.unstage(batch.touched);
    batch.touched = undefined;
  }

  /** Make staged batches durable and audit them: one directory fsync and one audit append for all of them. */
  async settle(batches: readonly StagedBatch[]): Promise<void> {
    await this.finish(
      batches.some((b) => b.wrote),
      batches.flatMap((b) => b.notes),
    );
  }

  /**
   * After the lock: make the new task names durable (one directory fsync) and audit, the two in parallel. The
   * audit entries are written only after the task files are in place (a crashed process cannot leave the log
   * ahead of them); after a power loss the log may name a change of the last, unacknowledged batch whose
   * rename was lost with the directory's unsynced state.
   */
  private async finish(wrote: boolean, notes: AuditNote[]): Promise<void> {
    const audited = this.store.audit.appendAll(notes).then(
      () => undefined,
      (err: Error) => {
        // The change is already in place; failing the call now would make a retry repeat it.
        const what = notes.map((x) => `${x.action} ${x.target ?? ''}`.trim()).join(', ');
        process.emitWarning(`loki: ${what} done but not audited: ${err.message}`, { code: 'LOKI_AUDIT_WRITE' });
      },
    );
    const spares = this.spares;
    const point = spares?.syncPoint();
    await Promise.all([wrote ? this.syncTasksDir().then(() => point && spares?.markSynced(point)) : undefined, audited]);
  }

  /** fsync the tasks folder on the thread pool (the event loop keeps serving while the disk works). */
  private async syncTasksDir(): Promise<void> {
    try {
      await this.tasksDir.use((dir) => fsyncAsync(dir.fd));
    } catch {
      // Platforms that cannot open directories (Windows), file systems that refuse fsync on them.
    }
  }

  // ---- internals --------------------------------------------------------------------------------------------

  private mustRead(id: string): Task {
    const t = this.cache.reread(id);
    if (!t) throw new UsageError(`no task "${id}": loki_task_list shows the ids`);
    return t;
  }

  /** Stage task writes: the view has them at once, the files are written when the locked section ends. */
  private write(tasks: readonly Task[]): void {
    if (tasks.length === 0) return;
    const batch = this.batch;
    if (!batch) throw new Error('internal: queue writes happen inside change()');
    for (const t of tasks) {
      if (batch.touched && !batch.touched.has(t.id)) batch.touched.set(t.id, batch.staged.get(t.id));
      batch.staged.set(t.id, t);
    }
    this.cache.stage(tasks);
  }

  /** Put back (or dead-letter) every task whose lease ran out. Returns their ids. */
  private expireLeases(now: number, maxRetries: number): string[] {
    const stale = [...this.cache.inProgress()].filter((t) => leaseExpired(t, now));
    const changed: Task[] = [];
    for (const t of stale) {
      const fresh = this.cache.reread(t.id);
      if (fresh && leaseExpired(fresh, now)) changed.push(expireLease(fresh, now, maxRetries));
    }
    this.write(changed);
    return changed.map((t) => t.id);
  }

  private nothingReady(run: RunState | undefined, phase: Phase | undefined): string {
    // The usual case at the end of a drain, when agents poll while the last tasks are worked on: every open
    // task is held. Told from the view's indexes; the summary reads every task.
    const held = this.cache.inProgressCount;
    if (this.cache.inClaimOrder().length === 0 && held > 0) return `no task is ready: ${held} in progress by other agents, none pending`;
    const s = this.summary(run);
    if (s.total === 0) return 'the queue is empty: add tasks with loki_task_add';
    const open = s.counts.pending + s.counts.failed;
    if (open === 0) {
      if (s.counts['in-progress'] > 0) return `no task is ready: ${s.counts['in-progress']} in progress by other agents, none pending`;
      return s.counts.blocked > 0 ? `no task is ready: ${s.counts.blocked} blocked (unblock with loki_task_update)` : 'no open tasks: every task is completed or dead-lettered';
    }
    if (s.stuckOnDeadLetter.length > 0) return `no task is ready: ${s.stuckOnDeadLetter.slice(0, 10).join(', ')} depend on dead-lettered tasks (fix them and \`loki tasks retry ID\`, or edit the dependencies)`;
    if (s.laterPhases > 0 && !phase) return `no task is ready in ${run?.phase ?? 'this phase'}: ${s.laterPhases} ready task(s) belong to later phases; finish this phase and call loki_phase_advance`;
    return `no task is ready${phase ? ` in ${phase}` : ''}: ${s.waiting} wait on dependencies that are not completed yet`;
  }
}

function isOpenInPhase(t: Task, run: RunState): boolean {
  return OPEN_STATES.includes(t.status) && effectivePhase(t.phase, run.tier) === run.phase;
}

function claimNote(r: ClaimResult, agent: string): AuditNote | undefined {
  if (r.task) return { action: 'task.claim', target: r.task.id, data: { agent, attempt: r.task.attempts.at(-1)?.n, expired: r.expired } };
  return r.expired.length > 0 ? { action: 'task.expire', data: { ids: r.expired } } : undefined;
}

function whyNotClaimable(task: Task, lookup: (id: string) => Task | undefined): string | null {
  if (task.status === 'in-progress') return `${task.id} is in progress by ${task.lease?.agent ?? 'another agent'} until ${task.lease?.expiresAt ?? '?'}`;
  if (task.status !== 'pending' && task.status !== 'failed') return `${task.id} is ${task.status}${task.status === 'dead-letter' ? ' (retry it with loki_task_update action "retry")' : task.status === 'blocked' ? ` (${task.blockedReason ?? 'no reason'}; unblock it first)` : ''}`;
  const unmet = unmetDependencies(task, lookup);
  if (unmet.length > 0) return `${task.id} waits on ${unmet.join(', ')} (not completed yet)`;
  return null;
}

function applyAction(task: Task, req: UpdateRequest, now: number, leaseMs: number): Task {
  const needHolder = () => {
    if (!req.token) throw new UsageError(`\`${req.action}\` needs the \`token\` loki_task_claim returned`);
    const h = checkHolder(task, req.token, null);
    if (!h.ok) throw new UsageError(h.repeat ? `${task.id} is no longer held by that token` : h.reason);
  };
  switch (req.action) {
    case 'release':
      needHolder();
      return releaseTask(task, req.token!, now, req.reason ?? null);
    case 'renew':
      needHolder();
      return renewLease(task, now, leaseMs);
    case 'block': {
      if (!req.reason?.trim()) throw new UsageError('`block` needs a `reason` (what the task is waiting for)');
      if (task.status === 'in-progress') needHolder();
      else if (task.status !== 'pending' && task.status !== 'failed') throw new UsageError(`${task.id} is ${task.status}; only pending, failed or your in-progress tasks can be blocked`);
      return blockTask(task, now, req.reason.trim());
    }
    case 'unblock':
      if (task.status !== 'blocked') throw new UsageError(`${task.id} is ${task.status}, not blocked`);
      return unblockTask(task, now);
    case 'retry':
      if (task.status !== 'dead-letter') throw new UsageError(`${task.id} is ${task.status}; only dead-lettered tasks are retried`);
      return retryTask(task, now);
    default:
      return task;
  }
}

function sameDefinition(a: Task, b: Task): boolean {
  const key = (t: Task) => JSON.stringify([t.title, t.description, t.priority, t.phase, t.dependencies, t.acceptance, t.source]);
  return key(a) === key(b);
}

