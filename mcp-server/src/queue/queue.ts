/**
 * The task queue: every operation the tools and the CLI perform, over the `tasks` table of `.loki/loki.db`.
 * Each change is one transaction (Store.mutate): read the tasks it changes, apply the pure rules of
 * domain/tasks.ts, write them back, append the audit entry, commit. The database's write lock (BEGIN IMMEDIATE)
 * is what keeps two agents from claiming the same task; there is no other coordination between processes.
 */
import crypto from 'node:crypto';
import { PHASES, type Phase } from '../domain/phases.js';
import {
  CLAIMABLE_STATES,
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
  TASK_STATES,
  type Priority,
  type StateCounts,
  type Task,
  type TaskDraft,
  type TaskEdit,
  type TaskState,
} from '../domain/tasks.js';
import { DamagedRecordError, UsageError } from '../errors.js';
import type { TaskFailures } from '../domain/notify.js';
import type { RunState } from '../run/records.js';
import { checkId } from '../store/paths.js';
import { damagedMessage } from '../store/schema.js';
import type { AuditNote, Store } from '../store/store.js';
import { decodeTask } from './records.js';

export const MAX_BATCH = 200;

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
  /**
   * Sessions known to have stopped: a task one of them holds may be taken over by id (resumed by the next
   * session rather than left until its lease runs out).
   */
  orphans?: ReadonlySet<string> | undefined;
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
  /** Sessions known to have stopped: `release` of a task one of them holds needs no token. */
  orphans?: ReadonlySet<string> | undefined;
  /**
   * A person's override (`loki tasks release|block`, queue/steer.ts): release or block a task an agent holds
   * without its token. An agent never gets this: its token is what proves it holds the task.
   */
  override?: boolean | undefined;
  /** The audit entry's actor when it is not the process's own (a person at the CLI: run/person.ts). */
  actor?: string | undefined;
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
  /** What the task-failures alert measures (domain/notify.ts), in the same read transaction. */
  failures: TaskFailures;
}

interface TaskRow {
  id: string;
  body: string;
}

const CLAIMABLE_SQL = CLAIMABLE_STATES.map((s) => `'${s}'`).join(', ');
const OPEN_SQL = OPEN_STATES.map((s) => `'${s}'`).join(', ');
const ALL_STATES_SQL = TASK_STATES.map((s) => `'${s}'`).join(', ');
const PHASES_SQL = PHASES.map((p) => `'${p}'`).join(', ');

export class TaskQueue {
  constructor(
    private readonly store: Store,
    private readonly limits: () => QueueLimits,
    /** The run as stored, read inside a claim's transaction (its phase and tier decide what may be claimed). */
    private readonly currentRun: () => Readonly<RunState> | undefined,
  ) {}

  // ---- reads ------------------------------------------------------------------------------------------------

  get(id: string): Task | undefined {
    checkId(id, 'task id');
    const row = this.store.db.get<TaskRow>('SELECT id, body FROM tasks WHERE id = ?', id);
    return row ? decodeTask(row) : undefined;
  }

  private all(): Task[] {
    return this.store.db.all<TaskRow>('SELECT id, body FROM tasks ORDER BY seq').map(decodeTask);
  }

  /** The status of a task, without reading its record (dependency checks). */
  private statusOf = (id: string): Pick<Task, 'status'> | undefined =>
    this.store.db.get<{ status: TaskState }>('SELECT status FROM tasks WHERE id = ?', id);

  list(filter: ListFilter = {}): { tasks: Task[]; total: number } {
    const matches = this.all().filter(
      (t) =>
        (!filter.status || filter.status.includes(t.status)) &&
        (!filter.phase || t.phase === filter.phase) &&
        (!filter.priority || t.priority === filter.priority),
    );
    return { tasks: matches.slice(0, filter.limit ?? matches.length), total: matches.length };
  }

  /**
   * Where the queue stands, for every briefing (loki_status, the Stop and SessionStart hooks, the dashboard), read
   * as of one moment (one read transaction). Counted from the columns SQLite generates from each task's body
   * (status, phase) and from the fields it extracts (dependencies, attempts' outcomes), once the fields these
   * aggregates use are checked (checkAggregated, dependenciesOf, failuresIn); the tasks in progress, and the
   * claimable ones in claim order up to the next, are decoded. Decoding every task, as it did, was about 0.1 ms a task in a new process: 20 ms of each
   * hook in a 200-task run.
   */
  summary(run: RunState | undefined, now = Date.now()): QueueSummary {
    return this.aggregate(() => this.summaryIn(run, now));
  }

  private summaryIn(run: RunState | undefined, now: number): QueueSummary {
    const db = this.store.db;
    const counts = countStates([]);
    let total = 0;
    for (const r of db.all<{ status: TaskState; n: number }>(
      'SELECT status, count(*) AS n FROM tasks GROUP BY status',
    )) {
      counts[r.status] = r.n;
      total += r.n;
    }
    const inProgress = db
      .all<TaskRow>("SELECT id, body FROM tasks WHERE status = 'in-progress' ORDER BY seq")
      .map(decodeTask)
      .map((t) => ({
        id: t.id,
        title: t.title,
        agent: t.lease?.agent ?? 'unknown',
        expiresAt: t.lease?.expiresAt ?? t.updatedAt,
        expired: leaseExpired(t, now),
      }));
    // Every task's state, for the dependency checks below (one indexed read rather than a query per dependency).
    const states = new Map(
      db.all<{ id: string; status: TaskState }>('SELECT id, status FROM tasks').map((r) => [r.id, r]),
    );
    const lookup = (id: string) => states.get(id);
    const next = pickNext(this.claimOrder(), lookup, (t) => phaseAllows(t, run), true);
    // Claimable tasks with what readiness needs: their phase and their dependencies' states.
    const claimable = db
      .all<{ id: string; phase: Phase; deps: string }>(
        `SELECT id, phase, body -> '$.dependencies' AS deps FROM tasks WHERE status IN (${CLAIMABLE_SQL}) ORDER BY seq`,
      )
      .map((r) => ({ id: r.id, phase: r.phase, dependencies: this.dependenciesOf(r.id, r.deps) }));
    const ready = claimable.filter((t) => unmetDependencies(t, lookup).length === 0);
    const waitingTasks = claimable.filter((t) => unmetDependencies(t, lookup).length > 0);
    return {
      counts,
      total,
      inProgress,
      next: next ? { id: next.id, title: next.title, priority: next.priority, phase: next.phase } : null,
      openInPhase: run ? this.openInPhaseIdsIn(run).length : 0,
      laterPhases: ready.filter((t) => !phaseAllows(t, run)).length,
      waiting: waitingTasks.length,
      stuckOnDeadLetter: waitingTasks
        .filter((t) => t.dependencies.some((d) => lookup(d)?.status === 'dead-letter'))
        .map((t) => t.id),
      failures: run ? this.failuresIn(run.runId) : { failedAttempts: 0, deadLetters: 0 },
    };
  }

  /**
   * What the task-failures alert measures (domain/notify.ts): attempts that failed or whose lease ran out, on
   * tasks of `runId` not completed since, and dead-lettered tasks.
   */
  failures(runId: string): TaskFailures {
    return this.aggregate(() => this.failuresIn(runId));
  }

  private failuresIn(runId: string): TaskFailures {
    // Each attempt of the run's unfinished tasks, read only when it is an object (CASE fixes the order); a task with
    // an attempt that is not one is damaged, and named.
    const row = this.store.db.get<{ attempts: number | null; bad: string | null; dead: number }>(
      `SELECT
         sum(CASE WHEN a.type = 'object' THEN a.value ->> '$.outcome' IN ('failed', 'expired') ELSE 0 END) AS attempts,
         max(CASE WHEN a.type <> 'object' THEN tasks.id END) AS bad,
         (SELECT count(*) FROM tasks WHERE status = 'dead-letter' AND body ->> '$.runId' = ?1) AS dead
       FROM tasks, json_each(tasks.body, '$.attempts') AS a
       WHERE tasks.status <> 'completed' AND tasks.body ->> '$.runId' = ?1`,
      runId,
    )!;
    if (row.bad !== null) this.damaged(row.bad);
    return { failedAttempts: row.attempts ?? 0, deadLetters: row.dead };
  }

  /** Ids of the open tasks (pending, in progress, failed, blocked) that belong to the run's current phase. */
  openInPhaseIds(run: RunState): string[] {
    return this.aggregate(() => this.openInPhaseIdsIn(run));
  }

  private openInPhaseIdsIn(run: RunState): string[] {
    return this.store.db
      .all<{ id: string; phase: Phase }>(`SELECT id, phase FROM tasks WHERE status IN (${OPEN_SQL}) ORDER BY seq`)
      .filter((r) => effectivePhase(r.phase, run.tier) === run.phase)
      .map((r) => r.id);
  }

  /**
   * The aggregates read a task's status and phase columns and its dependencies, attempts and runId without decoding
   * it: a task whose fields there are not of their type was changed outside loki-mode, and is decoded, which throws
   * DamagedRecordError naming it and the fix. One pass of SQLite's JSON parser over the bodies, no decoding.
   */
  /** An aggregate over the tasks: one read transaction, the counted fields checked first (checkAggregated). */
  private aggregate<T>(count: () => T): T {
    return this.store.db.read(() => {
      this.checkAggregated();
      return count();
    });
  }

  private checkAggregated(): void {
    const row = this.store.db.get<TaskRow>(
      `SELECT id, body FROM tasks WHERE status NOT IN (${ALL_STATES_SQL}) OR phase NOT IN (${PHASES_SQL})
         OR json_type(body, '$.runId') IS NOT 'text'
         OR json_type(body, '$.dependencies') IS NOT 'array' OR json_type(body, '$.attempts') IS NOT 'array' LIMIT 1`,
    );
    if (row) this.damaged(row.id);
  }

  /** A claimable task's dependencies as the summary reads them: strings, or the task is damaged. */
  private dependenciesOf(id: string, text: string): string[] {
    const deps = JSON.parse(text) as unknown;
    if (Array.isArray(deps) && deps.every((d) => typeof d === 'string')) return deps;
    return this.damaged(id);
  }

  /**
   * Name the task the aggregates found damaged: decoding it throws DamagedRecordError with the fix. Should the
   * decoder accept it (a key written twice: SQLite reads the first, JSON.parse keeps the last), it is damaged all
   * the same.
   */
  private damaged(id: string): never {
    decodeTask(this.store.db.get<TaskRow>('SELECT id, body FROM tasks WHERE id = ?', id)!);
    throw new DamagedRecordError(
      damagedMessage(`task "${id}"`, 'a field the queue counts is not of its type (a key written twice?)'),
    );
  }

  // ---- changes ----------------------------------------------------------------------------------------------

  /** Add a batch; all or nothing. Ids given by the caller must be new, or name an identical task (a retry). */
  add(
    drafts: readonly TaskDraft[],
    runId: string,
    defaults: { phase: Phase; source: Task['source'] },
    actor?: string,
  ): AddResult {
    if (drafts.length === 0) throw new UsageError('`tasks` is empty: give at least one task');
    if (drafts.length > MAX_BATCH) throw new UsageError(`at most ${MAX_BATCH} tasks per call; split the batch`);
    return this.store.mutate(
      () => this.addIn(drafts, runId, defaults),
      (r) =>
        r.added.length > 0
          ? {
              action: 'task.add',
              ...(actor ? { actor } : {}),
              data: { ids: r.added.map((t) => t.id).slice(0, 50), count: r.added.length },
            }
          : undefined,
    );
  }

  /** The body of `add`, inside the caller's transaction. */
  private addIn(
    drafts: readonly TaskDraft[],
    runId: string,
    defaults: { phase: Phase; source: Task['source'] },
  ): AddResult {
    const now = new Date().toISOString();
    let seq = this.store.db.get<{ seq: number | null }>('SELECT max(seq) AS seq FROM tasks')!.seq ?? 0;
    const batch = new Map<string, Task>();
    const unchanged: string[] = [];
    for (const d of drafts) {
      let id = d.id;
      if (id === undefined) {
        // Automatic ids follow the creation sequence, skipping any an agent chose by hand.
        let n = seq + 1;
        while (batch.has(`t${n}`) || this.get(`t${n}`)) n++;
        id = `t${n}`;
      }
      checkId(id, 'task id');
      if (batch.has(id)) throw new UsageError(`task id "${id}" appears twice in the batch`);
      const existing = this.get(id);
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
        throw new UsageError(
          `task "${id}" already exists with different content: use loki_task_update to change it, or pick a new id`,
        );
      }
      batch.set(id, task);
      seq = Math.max(seq, task.seq);
    }
    const added = [...batch.values()];
    checkDependencies(added, (id) => batch.get(id) ?? this.get(id));
    for (const t of added) this.store.db.run('INSERT INTO tasks (id, body) VALUES (?, ?)', t.id, JSON.stringify(t));
    return { added, unchanged };
  }

  claim(opts: ClaimOptions): ClaimResult {
    if (opts.taskId !== undefined) checkId(opts.taskId, 'taskId');
    const limits = this.limits();
    return this.store.mutate(
      () => this.claimIn(opts, limits),
      (r) => claimNote(r, opts.agent),
    );
  }

  /**
   * Complete a task the caller holds; with `next`, claim the caller's next task in the same transaction (one
   * commit for the usual complete-then-claim step). A repeat with the same token changes nothing.
   */
  complete(
    id: string,
    token: string,
    summary: string,
    evidence: string[],
    next?: ClaimOptions,
  ): FinishResult & { next: ClaimResult | null } {
    checkId(id, 'task id');
    if (next?.taskId !== undefined) checkId(next.taskId, 'taskId');
    const limits = this.limits();
    return this.store.tx(() => {
      const task = this.mustRead(id);
      const holder = checkHolder(task, token, 'completed');
      let finished: FinishResult;
      const notes: AuditNote[] = [];
      if (!holder.ok) {
        if (!holder.repeat) throw new UsageError(holder.reason);
        finished = { task, repeated: true };
      } else {
        const done = completeTask(task, token, Date.now(), summary, evidence);
        this.write(done);
        finished = { task: done, repeated: false };
        const c = done.completion;
        notes.push({
          action: 'task.complete',
          target: id,
          data: { agent: c?.agent, summary: c?.summary.slice(0, 500), evidence: c?.evidence.slice(0, 10) },
        });
      }
      let claimed: ClaimResult | null = null;
      if (next && finished.repeated) {
        // A retry of a completion that went through (its answer was lost): hand back what the first call claimed
        // for this agent, never a second task.
        claimed = this.heldBy(next.agent);
      } else if (next) {
        claimed = this.claimIn(next, limits);
        const note = claimNote(claimed, next.agent);
        if (note) notes.push(note);
      }
      this.store.audit.appendAll(notes);
      return { ...finished, next: claimed };
    });
  }

  fail(id: string, token: string, error: string): FinishResult {
    checkId(id, 'task id');
    const { maxRetries } = this.limits();
    return this.store.mutate(
      (): FinishResult => {
        const task = this.mustRead(id);
        const holder = checkHolder(task, token, 'failed');
        if (!holder.ok) {
          if (holder.repeat) return { task, repeated: true };
          throw new UsageError(holder.reason);
        }
        const failed = failTask(task, token, Date.now(), error, 'failed', maxRetries);
        this.write(failed);
        return { task: failed, repeated: false };
      },
      (r) =>
        r.repeated
          ? undefined
          : {
              action: r.task.status === 'dead-letter' ? 'task.dead-letter' : 'task.fail',
              target: id,
              data: { failures: r.task.failures, error: error.slice(0, 500) },
            },
    );
  }

  private claimIn(opts: ClaimOptions, limits: QueueLimits): ClaimResult {
    // Read here, in the transaction: a phase advanced since the caller looked decides what may be claimed.
    const run = this.currentRun();
    const now = Date.now();
    const expired = this.expireLeases(now, limits.maxRetries);
    let candidate: Task | undefined;
    if (opts.taskId !== undefined) {
      candidate = this.get(opts.taskId);
      if (!candidate) throw new UsageError(`no task "${opts.taskId}": loki_task_list shows the ids`);
      const holder = candidate.lease?.agent;
      if (candidate.status === 'in-progress' && holder && holder !== opts.agent && opts.orphans?.has(holder)) {
        // Its session stopped: the attempt ends as released (not failed: nothing went wrong with the task).
        candidate = releaseTask(candidate, candidate.lease!.token, now, `taken over: session ${holder} stopped`);
      }
      const why = whyNotClaimable(candidate, this.statusOf);
      if (why) return { task: null, token: null, expired, reason: why };
    } else {
      const allowed = (t: Task) =>
        opts.phase ? effectivePhase(t.phase, run?.tier ?? 'complex') === opts.phase : phaseAllows(t, run);
      candidate = pickNext(this.claimOrder(), this.statusOf, allowed, true);
      if (!candidate) return { task: null, token: null, expired, reason: this.nothingReady(run, opts.phase) };
    }
    const token = crypto.randomBytes(12).toString('hex');
    const claimed = claimTask(candidate, opts.agent, token, now, limits.leaseMinutes * 60_000);
    this.write(claimed);
    return { task: claimed, token, expired, reason: null };
  }

  /** Claimable tasks in claim order (the tasks_claim index), read one at a time until the first that fits. */
  private *claimOrder(): Generator<Task> {
    // The ORDER BY is domain/tasks.ts claimOrder (priority rank, fresh work before retries, creation order), and
    // exactly the tasks_claim index, named so the planner never prefers sorting the queue (it would, unanalysed).
    const rows = this.store.db
      .statement(
        `SELECT id, body FROM tasks INDEXED BY tasks_claim WHERE status IN (${CLAIMABLE_SQL}) ORDER BY rank, status = 'failed', seq`,
      )
      .iterate();
    for (const row of rows) yield decodeTask(row as unknown as TaskRow);
  }

  /** Leases that ran out: each ends its attempt as a failure (maybe dead-lettering the task). */
  private expireLeases(now: number, maxRetries: number): string[] {
    const due = this.store.db
      .all<TaskRow>(
        "SELECT id, body FROM tasks WHERE status = 'in-progress' AND (lease_expires IS NULL OR lease_expires <= ?)",
        new Date(now).toISOString(),
      )
      .map(decodeTask)
      .filter((t) => leaseExpired(t, now));
    for (const t of due) this.write(expireLease(t, now, maxRetries));
    return due.map((t) => t.id);
  }

  private nothingReady(run: Readonly<RunState> | undefined, phase: Phase | undefined): string {
    const s = this.summary(run as RunState | undefined);
    if (s.total === 0) return 'the queue is empty: add tasks with loki_task_add';
    const open = s.counts.pending + s.counts.failed;
    if (open === 0) {
      if (s.counts['in-progress'] > 0)
        return `no task is ready: ${s.counts['in-progress']} in progress by other agents, none pending`;
      return s.counts.blocked > 0
        ? `no task is ready: ${s.counts.blocked} blocked (unblock with loki_task_update)`
        : 'no open tasks: every task is completed or dead-lettered';
    }
    if (s.stuckOnDeadLetter.length > 0)
      return `no task is ready: ${s.stuckOnDeadLetter.slice(0, 10).join(', ')} depend on dead-lettered tasks (fix them and \`loki tasks retry ID\`, or edit the dependencies)`;
    if (s.laterPhases > 0 && !phase)
      return `no task is ready in ${run?.phase ?? 'this phase'}: ${s.laterPhases} ready task(s) belong to later phases; finish this phase and call loki_phase_advance`;
    return `no task is ready${phase ? ` in ${phase}` : ''}: ${s.waiting} wait on dependencies that are not completed yet`;
  }

  /**
   * Extend the leases `agent` holds once half of a lease has passed (loki_status calls this every turn, so an
   * agent that keeps working keeps its tasks, and one that died loses them a lease later). Returns the ids.
   */
  renewHeldBy(agent: string, now = Date.now()): string[] {
    const leaseMs = this.limits().leaseMinutes * 60_000;
    const due = (t: Task) =>
      t.status === 'in-progress' &&
      t.lease?.agent === agent &&
      !leaseExpired(t, now) &&
      Date.parse(t.lease.expiresAt) - now < leaseMs / 2;
    const held = () =>
      this.store.db
        .all<TaskRow>("SELECT id, body FROM tasks WHERE status = 'in-progress' AND lease_agent = ?", agent)
        .map(decodeTask)
        .filter(due);
    if (held().length === 0) return [];
    return this.store.mutate(
      () => {
        const renewed = held().map((t) => renewLease(t, now, leaseMs));
        for (const t of renewed) this.write(t);
        return renewed.map((t) => t.id);
      },
      (ids) => (ids.length > 0 ? { action: 'task.renew', data: { agent, ids } } : undefined),
    );
  }

  update(req: UpdateRequest): Task {
    checkId(req.id, 'task id');
    for (const dep of req.edit.dependencies ?? []) checkId(dep, 'dependency');
    const { leaseMinutes } = this.limits();
    let heldBy: string | null = null;
    return this.store.mutate(
      (): Task => {
        const now = Date.now();
        let task = this.mustRead(req.id);
        heldBy = task.status === 'in-progress' ? (task.lease?.agent ?? null) : null;
        const hasEdit = Object.values(req.edit).some((v) => v !== undefined);
        if (hasEdit) {
          if (task.status === 'completed')
            throw new UsageError(`${task.id} is completed and stays as it was done; add a follow-up task instead`);
          task = editTask(task, now, req.edit);
          if (req.edit.dependencies) {
            const edited = task;
            checkDependencies([edited], (id) => (id === edited.id ? edited : this.get(id)));
          }
        }
        if (req.action) task = applyAction(task, req, now, leaseMinutes * 60_000);
        else if (!hasEdit) throw new UsageError('nothing to change: give fields to edit and/or an `action`');
        this.write(task);
        return task;
      },
      (t) => ({
        action: `task.${req.action ?? 'edit'}`,
        target: t.id,
        ...(req.actor ? { actor: req.actor } : {}),
        data: {
          fields: Object.keys(req.edit).filter((k) => req.edit[k as keyof TaskEdit] !== undefined),
          status: t.status,
          reason: req.reason ?? null,
          // Whose claim a person's release or block ended: the override is on the record.
          ...(req.override && heldBy && !req.token ? { override: { heldBy } } : {}),
        },
      }),
    );
  }

  /**
   * Fill the queue of a run from its spec, inside the caller's transaction (loki_start). A new run (`fresh`)
   * starts with an empty queue: tasks of earlier runs move to task_archive under their run. Resuming
   * (`fresh: false`) queues only when the queue is empty. Not audited here: the caller's run.start / run.resume
   * entry records the count.
   */
  seedIn(runId: string, drafts: readonly TaskDraft[], opts: { fresh: boolean }): AddResult & { archived: number } {
    if (!this.store.db.inTransaction) throw new Error('internal: seedIn runs inside the caller’s transaction');
    let archived = 0;
    const previous = this.store.db.get<{ run: string }>("SELECT body ->> '$.runId' AS run FROM tasks LIMIT 1");
    if (previous && (opts.fresh || previous.run !== runId)) {
      archived = this.store.db.run(
        "INSERT OR REPLACE INTO task_archive (run_id, id, body) SELECT body ->> '$.runId', id, body FROM tasks",
      ).changes;
      this.store.db.run('DELETE FROM tasks');
    } else if (previous) {
      return { added: [], unchanged: [], archived };
    }
    if (drafts.length === 0) return { added: [], unchanged: [], archived };
    return {
      ...this.addIn(drafts, runId, { phase: 'DEVELOPMENT', source: { kind: 'spec', section: null } }),
      archived,
    };
  }

  /** The task `agent` holds (the newest claim), as a claim's answer; none when it holds nothing. */
  private heldBy(agent: string): ClaimResult {
    const row = this.store.db.get<TaskRow>(
      "SELECT id, body FROM tasks WHERE status = 'in-progress' AND lease_agent = ? ORDER BY body ->> '$.lease.claimedAt' DESC LIMIT 1",
      agent,
    );
    const held = row && decodeTask(row);
    return held
      ? { task: held, token: held.lease!.token, expired: [], reason: null }
      : {
          task: null,
          token: null,
          expired: [],
          reason: 'this completion was already recorded; claim the next task with loki_task_claim',
        };
  }

  private mustRead(id: string): Task {
    const t = this.get(id);
    if (!t) throw new UsageError(`no task "${id}": loki_task_list shows the ids`);
    return t;
  }

  private write(task: Task): void {
    this.store.db.run('UPDATE tasks SET body = ? WHERE id = ?', JSON.stringify(task), task.id);
  }
}

function claimNote(r: ClaimResult, agent: string): AuditNote | undefined {
  if (r.task)
    return {
      action: 'task.claim',
      target: r.task.id,
      data: { agent, attempt: r.task.attempts.at(-1)?.n, expired: r.expired },
    };
  return r.expired.length > 0 ? { action: 'task.expire', data: { ids: r.expired } } : undefined;
}

function whyNotClaimable(task: Task, lookup: (id: string) => Pick<Task, 'status'> | undefined): string | null {
  if (task.status === 'in-progress')
    return `${task.id} is in progress by ${task.lease?.agent ?? 'another agent'} until ${task.lease?.expiresAt ?? '?'}`;
  if (!CLAIMABLE_STATES.includes(task.status)) {
    return `${task.id} is ${task.status}${task.status === 'dead-letter' ? ' (retry it with loki_task_update action "retry")' : task.status === 'blocked' ? ` (${task.blockedReason ?? 'no reason'}; unblock it first)` : ''}`;
  }
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
      if (task.status === 'in-progress' && !req.token && task.lease && req.orphans?.has(task.lease.agent))
        return releaseTask(task, task.lease.token, now, req.reason ?? `session ${task.lease.agent} stopped`);
      if (req.override && !req.token) {
        if (task.status !== 'in-progress' || !task.lease)
          throw new UsageError(`${task.id} is ${task.status}, not in progress: there is no claim to release`);
        return releaseTask(task, task.lease.token, now, req.reason ?? `released by a person at the loki CLI`);
      }
      needHolder();
      return releaseTask(task, req.token!, now, req.reason ?? null);
    case 'renew':
      needHolder();
      return renewLease(task, now, leaseMs);
    case 'block': {
      if (!req.reason?.trim()) throw new UsageError('`block` needs a `reason` (what the task is waiting for)');
      if (task.status === 'in-progress') {
        if (!req.override) needHolder();
      } else if (!CLAIMABLE_STATES.includes(task.status))
        throw new UsageError(
          `${task.id} is ${task.status}; only pending, failed or your in-progress tasks can be blocked`,
        );
      return blockTask(task, now, req.reason.trim());
    }
    case 'unblock':
      if (task.status !== 'blocked') throw new UsageError(`${task.id} is ${task.status}, not blocked`);
      return unblockTask(task, now);
    case 'retry':
      if (task.status !== 'dead-letter')
        throw new UsageError(`${task.id} is ${task.status}; only dead-lettered tasks are retried`);
      return retryTask(task, now);
    default:
      return task;
  }
}

function sameDefinition(a: Task, b: Task): boolean {
  const key = (t: Task) =>
    JSON.stringify([t.title, t.description, t.priority, t.phase, t.dependencies, t.acceptance, t.source]);
  return key(a) === key(b);
}
