/**
 * Queue operations in the context of the run: what the task tools and `loki tasks` call. They check the run
 * (active, not paused for new work), choose defaults (the agent is the session, new tasks join the current
 * phase), and shape compact views of tasks for responses.
 */
import type { Phase } from '../domain/phases.js';
import { CLAIMABLE_STATES, unmetDependencies, type Task, type TaskDraft } from '../domain/tasks.js';
import type { Project } from '../project.js';
import { readMarkers } from '../run/signals.js';
import { stoppedSessions } from '../run/sessions.js';
import { activeRun, activeRunPeek, peekRun } from '../run/state.js';
import { checkId } from '../store/paths.js';
import type { AddResult, ClaimOptions, ClaimResult, FinishResult, ListFilter, UpdateRequest } from './queue.js';
import { UsageError } from '../errors.js';

/** One line per task in lists: enough to choose, not the whole record. */
export interface TaskRow {
  id: string;
  status: Task['status'];
  priority: Task['priority'];
  phase: Phase;
  title: string;
  waitingOn: string[];
  attempts: number;
  agent: string | null;
}

/** What a claimer needs to do the work. */
export interface TaskBrief {
  id: string;
  title: string;
  description: string;
  priority: Task['priority'];
  phase: Phase;
  acceptance: string[];
  dependencies: string[];
  source: Task['source'];
  status: Task['status'];
  attempt: number;
  /** Errors of earlier attempts, newest last, so a retry can avoid them. */
  previousErrors: string[];
}

export function taskRow(t: Task, lookup: (id: string) => Task | undefined): TaskRow {
  return {
    id: t.id,
    status: t.status,
    priority: t.priority,
    phase: t.phase,
    title: t.title,
    waitingOn: CLAIMABLE_STATES.includes(t.status) ? unmetDependencies(t, lookup) : [],
    attempts: t.attempts.length,
    agent: t.lease?.agent ?? null,
  };
}

export function taskBrief(t: Task): TaskBrief {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    priority: t.priority,
    phase: t.phase,
    acceptance: t.acceptance,
    dependencies: t.dependencies,
    source: t.source,
    status: t.status,
    attempt: t.attempts.at(-1)?.n ?? 0,
    previousErrors: t.attempts
      .filter((a) => a.error)
      .map((a) => `#${a.n} ${a.outcome}: ${a.error}`)
      .slice(-5),
  };
}

export async function addTasks(project: Project, drafts: TaskDraft[], kind: 'agent' | 'user'): Promise<AddResult> {
  project.config();
  const run = activeRun(project, 'adding tasks');
  return project.tasks().add(drafts, run.runId, { phase: run.phase, source: { kind, section: null } });
}

export async function claimTask(project: Project, opts: ClaimOptions): Promise<ClaimResult> {
  project.config();
  activeRunPeek(project, 'claiming a task');
  const markers = readMarkers(project.existingStore());
  if (markers.stop)
    throw new UsageError('.loki/STOP is present: start no new task; finish the current edit and end the session');
  if (markers.pause)
    throw new UsageError('the run is paused (.loki/PAUSE): claim nothing until the user runs `loki resume`');
  return project.tasks().claim({ ...opts, orphans: stoppedSessions(project.existingStore()) });
}

/**
 * Complete a held task; with `next`, also claim the agent's next task in the same step (skipped, with the
 * reason, while the run is paused, stopped or not active).
 */
export async function completeTask(
  project: Project,
  id: string,
  token: string,
  summary: string,
  evidence: string[],
  next?: Omit<ClaimOptions, 'taskId'>,
): Promise<FinishResult & { next: ClaimResult | null }> {
  project.config();
  refuseWithoutStore(project, id);
  let claimNext: ClaimOptions | undefined;
  let skipped: string | null = null;
  if (next) {
    const run = peekRun(project.existingStore());
    const markers = readMarkers(project.existingStore());
    skipped =
      !run || run.status !== 'active'
        ? 'the run is not active'
        : markers.stop
          ? '.loki/STOP is present: start nothing new'
          : markers.pause
            ? 'the run is paused (.loki/PAUSE)'
            : null;
    if (!skipped) claimNext = { ...next };
  }
  const r = project.tasks().complete(id, token, summary, evidence, claimNext);
  return skipped ? { ...r, next: { task: null, token: null, expired: [], reason: skipped } } : r;
}

export async function failTask(project: Project, id: string, token: string, error: string): Promise<FinishResult> {
  project.config();
  refuseWithoutStore(project, id);
  return project.tasks().fail(id, token, error);
}

export async function updateTask(project: Project, req: UpdateRequest): Promise<Task> {
  project.config();
  refuseWithoutStore(project, req.id);
  return project.tasks().update({ ...req, orphans: stoppedSessions(project.existingStore()) });
}

/**
 * Before .loki/ exists there is no task to act on: refused as the queue would refuse it, without creating .loki/
 * (a refused call leaves the disk as it was).
 */
function refuseWithoutStore(project: Project, id: string): void {
  if (!project.existingStore()) throw new UsageError(`no task "${id}": loki_task_list shows the ids`);
}

export function listTasks(project: Project, filter: ListFilter): { rows: TaskRow[]; total: number } {
  if (!project.existingStore()) return { rows: [], total: 0 };
  const queue = project.tasks();
  const { tasks, total } = queue.list(filter);
  return { rows: tasks.map((t) => taskRow(t, (id) => queue.get(id))), total };
}

export function getTasks(project: Project, ids: readonly string[]): { tasks: Task[]; missing: string[] } {
  for (const id of ids) checkId(id, 'an entry of `ids`');
  if (!project.existingStore()) return { tasks: [], missing: [...ids] };
  const queue = project.tasks();
  const tasks: Task[] = [];
  const missing: string[] = [];
  for (const id of ids) {
    const t = queue.get(id);
    if (t) tasks.push(t);
    else missing.push(id);
  }
  return { tasks, missing };
}
