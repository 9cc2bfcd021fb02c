/** `loki tasks [--status S] [--json]`, `loki tasks show ID`, `loki tasks retry ID`: the queue, for people. */
import { TASK_STATES, type Task, type TaskState } from '../domain/tasks.js';
import type { Project } from '../project.js';
import { getTasks, listTasks, updateTask } from '../queue/operations.js';
import { ago, print, printJson, table } from './output.js';
import { CliError } from '../errors.js';

export async function tasksCommand(
  project: Project,
  args: string[],
  opts: { json: boolean; status: string | undefined },
): Promise<number> {
  const [sub, id, ...extra] = args;
  if (sub === undefined) return listCommand(project, opts);
  if (extra.length > 0 || id === undefined || (sub !== 'show' && sub !== 'retry')) {
    throw new CliError(
      'usage: loki tasks [--status S[,S]] [--json] | loki tasks show ID [--json] | loki tasks retry ID',
      2,
    );
  }
  if (sub === 'show') return showCommand(project, id, opts.json);
  const task = await updateTask(project, { id, edit: {}, action: 'retry' });
  if (opts.json) printJson(task);
  else
    print(
      `${task.id} is pending again (its ${task.attempts.length} earlier attempt(s) stay in its history); the agent can claim it.`,
    );
  return 0;
}

function listCommand(project: Project, opts: { json: boolean; status: string | undefined }): number {
  const status = parseStatus(opts.status);
  const { rows, total } = listTasks(project, { status });
  if (opts.json) {
    printJson({ total, tasks: rows });
    return 0;
  }
  if (total === 0) {
    print(
      status ? `No ${status.join('/')} tasks.` : 'No tasks yet (the agent adds them from the spec when a run starts).',
    );
    return 0;
  }
  print(
    table([
      ['id', 'status', 'priority', 'phase', 'title'],
      ...rows.map((r) => [
        r.id,
        r.status,
        r.priority,
        r.phase,
        `${r.title}${r.waitingOn.length ? ` (waits on ${r.waitingOn.join(', ')})` : ''}`,
      ]),
    ]),
  );
  return 0;
}

function showCommand(project: Project, id: string, json: boolean): number {
  const { tasks } = getTasks(project, [id]);
  const t = tasks[0];
  if (!t) throw new CliError(`no task "${id}"; \`loki tasks\` lists them`, 1);
  if (json) {
    printJson(t);
    return 0;
  }
  print(describeTask(t));
  return 0;
}

function describeTask(t: Task): string {
  const lines = [
    `${t.id}  ${t.title}`,
    `Status      ${t.status}${t.blockedReason ? ` (${t.blockedReason})` : ''}${t.lease ? ` by ${t.lease.agent}, lease until ${t.lease.expiresAt}` : ''}`,
    `Priority    ${t.priority}`,
    `Phase       ${t.phase}`,
    `Source      ${t.source.kind}${t.source.section ? `: ${t.source.section}` : ''}`,
    `Created     ${t.createdAt} (${ago(t.createdAt)})`,
  ];
  if (t.dependencies.length) lines.push(`Depends on  ${t.dependencies.join(', ')}`);
  if (t.description) lines.push('', t.description);
  if (t.acceptance.length) lines.push('', 'Acceptance', ...t.acceptance.map((a) => `  - ${a}`));
  if (t.attempts.length) {
    lines.push('', `Attempts (${t.failures} failure(s) counted toward the retry limit)`);
    for (const a of t.attempts)
      lines.push(`  #${a.n} ${a.agent} ${a.claimedAt} ${a.outcome ?? 'in progress'}${a.error ? `: ${a.error}` : ''}`);
  }
  if (t.completion)
    lines.push(
      '',
      `Completed by ${t.completion.agent} at ${t.completion.at}: ${t.completion.summary}`,
      ...t.completion.evidence.map((e) => `  - ${e}`),
    );
  if (t.status === 'dead-letter')
    lines.push('', `Dead-lettered at ${t.deadLetteredAt}. Fix the cause, then \`loki tasks retry ${t.id}\`.`);
  return lines.join('\n');
}

function parseStatus(value: string | undefined): TaskState[] | undefined {
  if (value === undefined) return undefined;
  const states = value.split(',').map((s) => s.trim());
  for (const s of states) {
    if (!(TASK_STATES as readonly string[]).includes(s))
      throw new CliError(`--status: "${s}" is not a task state (${TASK_STATES.join(', ')})`, 2);
  }
  return states as TaskState[];
}
