/**
 * The task queue's rules, as pure functions over task values: states and their transitions, readiness,
 * claim order, leases, the retry limit and dead-letter, dependency validation (unknown ids, cycles), and the
 * phase a task belongs to. No I/O here: queue/ reads and writes, this decides.
 *
 *   pending ──claim──> in-progress ──complete──> completed
 *      ^                  │   │
 *      │ release/unblock  │   └──fail / lease expired──> failed ──claim──> in-progress ...
 *      │                  │                         └──(failures = maxRetries)──> dead-letter ──retry──> pending
 *   blocked <──block──────┘
 */
import { PHASES, TIER_PHASES, type Phase, type Tier } from './phases.js';

export const TASK_STATES = ['pending', 'in-progress', 'completed', 'failed', 'blocked', 'dead-letter'] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Highest first. */
export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** States that still need work: a phase is not done while one of its tasks is in one of these. */
export const OPEN_STATES: readonly TaskState[] = ['pending', 'in-progress', 'failed', 'blocked'];

/** States a claim can take a task from (when its dependencies are completed). */
export const CLAIMABLE_STATES: readonly TaskState[] = ['pending', 'failed'];

export const MAX_ATTEMPTS_KEPT = 50;
export const MAX_ERROR_CHARS = 2000;

/** Sizes of a task's fields: the record schema (queue/records.ts) and the tool inputs (tools/tasks.ts) both use these. */
export const TASK_LIMITS = {
  id: 64,
  token: 64,
  agent: 200,
  title: 300,
  description: 8000,
  dependencies: 100,
  acceptanceItem: 1000,
  acceptance: 50,
  summary: 4000,
  evidenceItem: 1000,
  evidence: 50,
  error: 4000,
  reason: 2000,
  section: 500,
  attempts: 100,
} as const;

export interface Attempt {
  n: number;
  agent: string;
  token: string;
  claimedAt: string;
  endedAt: string | null;
  outcome: 'completed' | 'failed' | 'expired' | 'released' | null;
  error: string | null;
}

export interface Lease {
  agent: string;
  token: string;
  claimedAt: string;
  expiresAt: string;
}

export interface Completion {
  at: string;
  agent: string;
  summary: string;
  evidence: string[];
}

export interface TaskSource {
  kind: 'spec' | 'agent' | 'user';
  /** For spec tasks, where in the spec it came from (heading path, JSON pointer, OpenAPI operation). */
  section: string | null;
}

export interface Task {
  id: string;
  /** Creation order; ties in priority are served first come, first served. */
  seq: number;
  runId: string;
  title: string;
  description: string;
  priority: Priority;
  phase: Phase;
  dependencies: string[];
  acceptance: string[];
  source: TaskSource;
  status: TaskState;
  lease: Lease | null;
  attempts: Attempt[];
  /** Failed attempts (failures and expired leases) since the task was created or last retried. */
  failures: number;
  blockedReason: string | null;
  completion: Completion | null;
  deadLetteredAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** Incremented on every write. */
  rev: number;
}

/** What an agent (or the spec parser) supplies to create a task. */
export interface TaskDraft {
  id?: string | undefined;
  title: string;
  description?: string | undefined;
  priority?: Priority | undefined;
  phase?: Phase | undefined;
  dependencies?: string[] | undefined;
  acceptance?: string[] | undefined;
  source?: TaskSource | undefined;
}

import { TaskRuleError } from '../errors.js';

// ---- phases -------------------------------------------------------------------------------------------------

/**
 * The phase of the run's tier a task belongs to. A task labelled with a phase the tier skips (INFRASTRUCTURE in
 * a simple run) belongs to the next phase the tier has, or to its last phase.
 */
export function effectivePhase(phase: Phase, tier: Tier): Phase {
  const list = TIER_PHASES[tier];
  if (list.includes(phase)) return phase;
  const at = PHASES.indexOf(phase);
  return list.find((p) => PHASES.indexOf(p) >= at) ?? list[list.length - 1]!;
}

/** Tasks of the current phase and of earlier ones are claimable; later phases wait. */
export function phaseAllows(task: Pick<Task, 'phase'>, run: { tier: Tier; phase: Phase } | undefined): boolean {
  if (!run || run.phase === 'GROWTH') return true;
  const list = TIER_PHASES[run.tier];
  return list.indexOf(effectivePhase(task.phase, run.tier)) <= list.indexOf(run.phase);
}

// ---- readiness and order ----------------------------------------------------------------------------------

/** Finds a task by id; readiness needs only its status. */
export type Lookup = (id: string) => Pick<Task, 'status'> | undefined;

export function leaseExpired(task: Task, now: number): boolean {
  return task.status === 'in-progress' && (task.lease === null || Date.parse(task.lease.expiresAt) <= now);
}

/** Dependencies that are not completed yet. */
export function unmetDependencies(task: Pick<Task, 'dependencies'>, lookup: Lookup): string[] {
  return task.dependencies.filter((d) => lookup(d)?.status !== 'completed');
}

export function isReady(task: Task, lookup: Lookup): boolean {
  return CLAIMABLE_STATES.includes(task.status) && unmetDependencies(task, lookup).length === 0;
}

/**
 * Claim order: priority, then fresh work before retries (so a failing task does not hold the agent up), then
 * creation order.
 */
export function claimOrder(a: Task, b: Task): number {
  return (
    PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) ||
    (a.status === 'failed' ? 1 : 0) - (b.status === 'failed' ? 1 : 0) ||
    a.seq - b.seq ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/**
 * The task a claim takes: the first ready one in claim order that `allowed` accepts. Candidates already in
 * claim order (the queue keeps them so) are scanned only until the first match.
 */
export function pickNext(
  candidates: Iterable<Task>,
  lookup: Lookup,
  allowed: (t: Task) => boolean,
  sorted = false,
): Task | undefined {
  let best: Task | undefined;
  for (const t of candidates) {
    if (!isReady(t, lookup) || !allowed(t)) continue;
    if (sorted) return t;
    if (!best || claimOrder(t, best) < 0) best = t;
  }
  return best;
}

// ---- transitions ----------------------------------------------------------------------------------------------

function touched(task: Task, at: string, changes: Partial<Task>): Task {
  return { ...task, ...changes, updatedAt: at, rev: task.rev + 1 };
}

function endAttempt(
  attempts: Attempt[],
  token: string,
  at: string,
  outcome: NonNullable<Attempt['outcome']>,
  error: string | null,
): Attempt[] {
  return attempts.map((a) => (a.token === token && a.outcome === null ? { ...a, endedAt: at, outcome, error } : a));
}

export function claimTask(task: Task, agent: string, token: string, now: number, leaseMs: number): Task {
  const at = new Date(now).toISOString();
  const attempt: Attempt = {
    n: (task.attempts.at(-1)?.n ?? 0) + 1,
    agent,
    token,
    claimedAt: at,
    endedAt: null,
    outcome: null,
    error: null,
  };
  return touched(task, at, {
    status: 'in-progress',
    lease: { agent, token, claimedAt: at, expiresAt: new Date(now + leaseMs).toISOString() },
    attempts: [...task.attempts, attempt].slice(-MAX_ATTEMPTS_KEPT),
  });
}

export function renewLease(task: Task, now: number, leaseMs: number): Task {
  if (!task.lease) return task;
  return touched(task, new Date(now).toISOString(), {
    lease: { ...task.lease, expiresAt: new Date(now + leaseMs).toISOString() },
  });
}

export function completeTask(task: Task, token: string, now: number, summary: string, evidence: string[]): Task {
  const at = new Date(now).toISOString();
  return touched(task, at, {
    status: 'completed',
    lease: null,
    attempts: endAttempt(task.attempts, token, at, 'completed', null),
    completion: { at, agent: task.lease?.agent ?? 'unknown', summary, evidence },
  });
}

/** A failed attempt (reported, or a lease that ran out). Past the retry limit the task goes to dead-letter. */
export function failTask(
  task: Task,
  token: string,
  now: number,
  error: string,
  outcome: 'failed' | 'expired',
  maxRetries: number,
): Task {
  const at = new Date(now).toISOString();
  const failures = task.failures + 1;
  const dead = failures >= maxRetries;
  return touched(task, at, {
    status: dead ? 'dead-letter' : 'failed',
    lease: null,
    failures,
    attempts: endAttempt(task.attempts, token, at, outcome, error.slice(0, MAX_ERROR_CHARS)),
    deadLetteredAt: dead ? at : null,
  });
}

/** An expired lease ends its attempt as a failure, so a task that keeps killing its claimer still reaches dead-letter. */
export function expireLease(task: Task, now: number, maxRetries: number): Task {
  const lease = task.lease;
  const error = lease
    ? `lease expired: ${lease.agent} claimed it at ${lease.claimedAt} and did not complete, fail or renew it by ${lease.expiresAt}`
    : 'lease expired: the claim was interrupted before its lease was written';
  return failTask(task, lease?.token ?? '', now, error, 'expired', maxRetries);
}

export function releaseTask(task: Task, token: string, now: number, reason: string | null): Task {
  const at = new Date(now).toISOString();
  return touched(task, at, {
    status: 'pending',
    lease: null,
    attempts: endAttempt(task.attempts, token, at, 'released', reason),
  });
}

export function blockTask(task: Task, now: number, reason: string): Task {
  const at = new Date(now).toISOString();
  const attempts = task.lease
    ? endAttempt(task.attempts, task.lease.token, at, 'released', `blocked: ${reason}`)
    : task.attempts;
  return touched(task, at, { status: 'blocked', lease: null, blockedReason: reason, attempts });
}

export function unblockTask(task: Task, now: number): Task {
  return touched(task, new Date(now).toISOString(), { status: 'pending', blockedReason: null });
}

/** Back from dead-letter for another round of attempts; the history stays. */
export function retryTask(task: Task, now: number): Task {
  return touched(task, new Date(now).toISOString(), { status: 'pending', failures: 0, deadLetteredAt: null });
}

export type TaskEdit = Partial<
  Pick<Task, 'title' | 'description' | 'priority' | 'phase' | 'dependencies' | 'acceptance'>
>;

export function editTask(task: Task, now: number, edit: TaskEdit): Task {
  const changes = Object.fromEntries(Object.entries(edit).filter(([, v]) => v !== undefined)) as TaskEdit;
  return touched(task, new Date(now).toISOString(), changes);
}

// ---- the holder's token ---------------------------------------------------------------------------------------

export type TokenCheck = { ok: true } | { ok: false; repeat: true } | { ok: false; repeat: false; reason: string };

/**
 * Does `token` hold `task` right now? A repeat of an operation that already went through with the same token
 * is reported as such (complete/fail are idempotent); anything else is refused with what happened instead.
 */
export function checkHolder(task: Task, token: string, repeatOutcome: Attempt['outcome']): TokenCheck {
  if (task.status === 'in-progress' && task.lease?.token === token) return { ok: true };
  const mine = task.attempts.find((a) => a.token === token);
  if (mine && mine.outcome === repeatOutcome && repeatOutcome !== null) return { ok: false, repeat: true };
  if (!mine)
    return {
      ok: false,
      repeat: false,
      reason: `that token never held ${task.id}: use the token loki_task_claim returned`,
    };
  if (mine.outcome === 'expired') {
    const now = task.lease ? ` and ${task.lease.agent} holds it now` : '';
    return {
      ok: false,
      repeat: false,
      reason: `your lease on ${task.id} expired${now}; do not finish it, claim another task (loki_task_claim)`,
    };
  }
  return {
    ok: false,
    repeat: false,
    reason: `${task.id} is no longer yours (your attempt ended: ${mine.outcome ?? 'taken over'}; it is ${task.status} now)`,
  };
}

// ---- dependencies ---------------------------------------------------------------------------------------------

/**
 * Validate the dependency graph after adding or editing `changed`: every dependency must exist and no cycle
 * may form. Throws with the unknown ids or the cycle spelled out ("t3 -> t5 -> t3").
 */
export function checkDependencies(changed: readonly Task[], lookup: (id: string) => Task | undefined): void {
  for (const t of changed) {
    const unknown = t.dependencies.filter((d) => !lookup(d));
    if (unknown.length > 0) {
      throw new TaskRuleError(
        `${t.id} depends on unknown task${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: add ${unknown.length > 1 ? 'them' : 'it'} first (or in the same batch) or fix the id`,
      );
    }
  }
  const cycle = findCycle(
    changed.map((t) => t.id),
    (id) => lookup(id)?.dependencies ?? [],
  );
  if (cycle) throw new TaskRuleError(`dependency cycle: ${cycle.join(' -> ')}; remove one of these dependencies`);
}

/**
 * Check a batch that will start an empty queue (the seed tasks of a spec) before anything is written: titles,
 * unique ids, and dependencies that stay inside the batch without a cycle.
 */
export function checkSeedDrafts(drafts: readonly TaskDraft[]): void {
  const byId = new Map<string, TaskDraft>();
  for (const d of drafts) {
    if (!d.id) throw new TaskRuleError('internal: seed tasks need ids');
    if (!d.title.trim()) throw new TaskRuleError(`seed task ${d.id} has an empty title`);
    if (byId.has(d.id)) throw new TaskRuleError(`seed task id ${d.id} appears twice`);
    byId.set(d.id, d);
  }
  const provisional = [...byId.values()].map((d) => ({ id: d.id!, dependencies: d.dependencies ?? [] }) as Task);
  const lookup = new Map(provisional.map((t) => [t.id, t]));
  checkDependencies(provisional, (id) => lookup.get(id));
}

/** A cycle reachable from `starts` in the dependency graph, as a closed path, or undefined. */
export function findCycle(starts: readonly string[], depsOf: (id: string) => readonly string[]): string[] | undefined {
  const done = new Set<string>();
  const onPath = new Map<string, number>();
  const path: string[] = [];
  // Iterative DFS so a long chain cannot overflow the stack.
  for (const start of starts) {
    if (done.has(start)) continue;
    const stack: { id: string; next: number }[] = [{ id: start, next: 0 }];
    onPath.set(start, 0);
    path.push(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const deps = depsOf(top.id);
      if (top.next < deps.length) {
        const dep = deps[top.next++]!;
        const at = onPath.get(dep);
        if (at !== undefined) return [...path.slice(at), dep];
        if (done.has(dep)) continue;
        onPath.set(dep, path.length);
        path.push(dep);
        stack.push({ id: dep, next: 0 });
      } else {
        stack.pop();
        path.pop();
        onPath.delete(top.id);
        done.add(top.id);
      }
    }
  }
  return undefined;
}

// ---- summaries ------------------------------------------------------------------------------------------------

export type StateCounts = Record<TaskState, number>;

export function countStates(tasks: Iterable<Task>): StateCounts {
  const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as StateCounts;
  for (const t of tasks) counts[t.status]++;
  return counts;
}
