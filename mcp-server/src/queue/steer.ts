/**
 * A person steering the queue from the `loki` CLI (`loki tasks add|edit|block|release|unblock`). The same queue
 * operations the task tools use, under the same rules (an active run to add to, a completed task stays as it was
 * done, dependencies must exist and not loop, a block needs a reason), with two differences:
 * - each change is recorded as the person's action: the audit entry's actor is `person:<user> via cli:<pid>`
 *   (run/person.ts), and tasks a person adds have the source `user`;
 * - a person may release or block a task an agent holds without its token (an override, on the record as
 *   `override.heldBy`): a person running the project outranks an agent's claim. The agent finds out when its
 *   complete or fail is refused for a token that no longer holds the task.
 */
import type { TaskDraft, TaskEdit, Task } from '../domain/tasks.js';
import type { Project } from '../project.js';
import { personAt } from '../run/person.js';
import { stoppedSessions } from '../run/sessions.js';
import { activeRun } from '../run/state.js';
import type { AddResult, UpdateAction } from './queue.js';
import { UsageError } from '../errors.js';

export async function addTasksAsPerson(project: Project, drafts: TaskDraft[]): Promise<AddResult> {
  const who = personAt(project, 'add tasks for a person');
  project.config();
  const run = activeRun(project, 'adding tasks');
  return project
    .tasks()
    .add(drafts, run.runId, { phase: run.phase, source: { kind: 'user', section: null } }, who.actor);
}

export async function editTaskAsPerson(project: Project, id: string, edit: TaskEdit): Promise<Task> {
  return changeAsPerson(project, id, edit, undefined, undefined);
}

/** block, release (an override when an agent holds it) and unblock; `reason` goes into the task's history. */
export async function steerTask(
  project: Project,
  id: string,
  action: Extract<UpdateAction, 'block' | 'release' | 'unblock'>,
  reason: string | undefined,
): Promise<Task> {
  return changeAsPerson(project, id, {}, action, reason);
}

async function changeAsPerson(
  project: Project,
  id: string,
  edit: TaskEdit,
  action: UpdateAction | undefined,
  reason: string | undefined,
): Promise<Task> {
  const who = personAt(project, 'steer tasks for a person');
  project.config();
  // No .loki/ yet: no task, said without creating it (a refused command leaves the disk as it was).
  if (!project.existingStore()) throw new UsageError(`no task "${id}": \`loki tasks\` lists them`);
  return project.tasks().update({
    id,
    edit,
    action,
    reason,
    override: action === 'release' || action === 'block',
    actor: who.actor,
    orphans: stoppedSessions(project.existingStore()),
  });
}
