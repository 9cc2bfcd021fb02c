/** Task tools: loki_task_add, loki_task_list, loki_task_claim, loki_task_complete, loki_task_fail, loki_task_update. */
import { z } from 'zod';
import { PHASES } from '../domain/phases.js';
import { PRIORITIES, TASK_LIMITS as L, TASK_STATES, type Task } from '../domain/tasks.js';
import { MAX_BATCH } from '../queue/queue.js';
import {
  addTasks,
  claimTask,
  completeTask,
  failTask,
  getTasks,
  listTasks,
  taskBrief,
  updateTask,
  type TaskBrief,
  type TaskRow,
} from '../queue/operations.js';
import { autoCheckpoint } from '../checkpoints/create.js';
import { passIdlePhases } from '../run/phase.js';
import { defineTool } from './define.js';
import type { NextStep } from '../run/next-step.js';

/** Fields naming tasks and claims: passed as sent (define.ts scrubs every other string for secrets). */
const VERBATIM = ['id', 'taskId', 'dependencies', 'token'];

// Ids are checked by the store's id rule (lowercase letters, digits, ".", "_", "-") with a message that says so.
const taskId = z.string().min(1).max(L.id);
const token = z.string().min(1).max(L.token).describe('The claim token loki_task_claim returned');
const agent = z
  .string()
  .min(1)
  .max(L.agent)
  .optional()
  .describe('Who works on it (a subagent name); default this session');
const fields = {
  title: z.string().min(1).max(L.title).describe('What to do, in one line'),
  description: z.string().max(L.description).optional().describe('Details'),
  priority: z.enum(PRIORITIES).optional().describe('Default medium'),
  phase: z.enum(PHASES).optional().describe('Phase it belongs to; default the current one'),
  dependencies: z.array(taskId).max(L.dependencies).optional().describe('Ids that must be completed first'),
  acceptance: z
    .array(z.string().min(1).max(L.acceptanceItem))
    .max(L.acceptance)
    .optional()
    .describe('Acceptance criteria'),
};

export const taskAddTool = defineTool({
  name: 'loki_task_add',
  title: 'Add tasks',
  description:
    'Add a batch of tasks (all or none). Unknown dependencies and cycles are refused; re-adding an identical task is a no-op.',
  kind: 'write',
  idempotent: true,
  verbatim: VERBATIM,
  input: z
    .object({
      tasks: z
        .array(z.object({ id: taskId.optional().describe('Your own id; default t<N>'), ...fields }).strict())
        .min(1)
        .max(MAX_BATCH)
        .describe('The tasks; dependencies may name ids in the same batch'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const r = await addTasks(ctx.project, args.tasks, 'agent');
    return {
      added: r.added.map((t) => ({ id: t.id, title: t.title, phase: t.phase, priority: t.priority })),
      unchanged: r.unchanged,
    };
  },
  render: (r) =>
    `Added ${r.added.length} task(s)${r.added.length ? `: ${r.added.map((t) => t.id).join(', ')}` : ''}${r.unchanged.length ? `; ${r.unchanged.length} already present` : ''}.`,
});

export const taskListTool = defineTool({
  name: 'loki_task_list',
  title: 'List tasks',
  description: 'Compact task rows, filtered by status, phase or priority; `ids` returns those tasks in full.',
  kind: 'read',
  idempotent: true,
  input: z
    .object({
      status: z.array(z.enum(TASK_STATES)).max(TASK_STATES.length).optional().describe('Only these states'),
      phase: z.enum(PHASES).optional().describe('Only this phase'),
      priority: z.enum(PRIORITIES).optional().describe('Only this priority'),
      ids: z.array(taskId).min(1).max(20).optional().describe('Return these tasks in full instead'),
      limit: z.number().int().min(1).max(200).optional().describe('Rows to return (default 50)'),
    })
    .strict(),
  handler: async (args, ctx) => {
    if (args.ids) {
      const { tasks, missing } = getTasks(ctx.project, args.ids);
      return { tasks: tasks.map(fullTask), missing, rows: [] as TaskRow[], total: tasks.length };
    }
    const { rows, total } = listTasks(ctx.project, {
      status: args.status,
      phase: args.phase,
      priority: args.priority,
      limit: args.limit ?? 50,
    });
    return { rows, total, tasks: [] as ReturnType<typeof fullTask>[], missing: [] as string[] };
  },
  render: (r) => {
    if (r.tasks.length > 0 || r.missing.length > 0) {
      return [...r.tasks.map(renderFull), ...(r.missing.length ? [`Not found: ${r.missing.join(', ')}`] : [])].join(
        '\n\n',
      );
    }
    if (r.total === 0) return 'No tasks match.';
    const lines = r.rows.map(
      (t) =>
        `${t.id} [${t.status}] ${t.priority} ${t.phase}: ${t.title}${t.waitingOn.length ? ` (waits on ${t.waitingOn.join(', ')})` : ''}${t.agent ? ` (${t.agent})` : ''}`,
    );
    return `${lines.join('\n')}${r.total > r.rows.length ? `\n... ${r.total - r.rows.length} more (narrow the filter or raise limit)` : ''}`;
  },
});

export const taskClaimTool = defineTool({
  name: 'loki_task_claim',
  title: 'Claim a task',
  description:
    'Take the highest-priority ready task (dependencies done, current phase or earlier) under a lease. Keep the token for complete/fail/release.',
  kind: 'write',
  idempotent: false,
  verbatim: VERBATIM,
  input: z
    .object({
      agent,
      phase: z.enum(PHASES).optional().describe('Only tasks of this phase'),
      taskId: taskId.optional().describe('Claim this task instead of the next in order'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const r = await claimTask(ctx.project, {
      agent: args.agent ?? ctx.session().id,
      phase: args.phase,
      taskId: args.taskId,
    });
    return {
      task: r.task ? taskBrief(r.task) : null,
      token: r.token,
      leaseExpiresAt: r.task?.lease?.expiresAt ?? null,
      expired: r.expired,
      reason: r.reason,
    };
  },
  render: (r) => renderClaim(r),
  next: (r) => claimStep(r),
});

/** After a claim: do the work, then complete it with the token, claiming the next task in the same call. */
function claimStep(r: ClaimView): NextStep | undefined {
  if (!r.task || !r.token) return undefined;
  return {
    work: `work on ${r.task.id} "${r.task.title}"`,
    call: {
      tool: 'loki_task_complete',
      args: { id: r.task.id, token: r.token, claimNext: true },
      add: 'summary, evidence',
    },
  };
}

type ClaimView = {
  task: TaskBrief | null;
  token: string | null;
  leaseExpiresAt: string | null;
  expired: string[];
  reason: string | null;
};

function renderClaim(r: ClaimView): string {
  if (!r.task)
    return `Nothing claimed: ${r.reason}${r.expired.length ? ` (expired leases put back: ${r.expired.join(', ')})` : ''}`;
  const t = r.task;
  return [
    `Claimed ${t.id} (${t.priority}, ${t.phase}, attempt ${t.attempt}): ${t.title}`,
    t.description ? `Description: ${t.description}` : '',
    t.acceptance.length ? `Acceptance:\n${t.acceptance.map((a) => `- ${a}`).join('\n')}` : '',
    t.previousErrors.length ? `Earlier attempts failed:\n${t.previousErrors.map((e) => `- ${e}`).join('\n')}` : '',
    `Token: ${r.token} (lease until ${r.leaseExpiresAt}); loki_task_fail with it if the task cannot be done.`,
  ]
    .filter(Boolean)
    .join('\n');
}

export const taskCompleteTool = defineTool({
  name: 'loki_task_complete',
  title: 'Complete a task',
  description:
    'Mark your claimed task completed with a summary and evidence. Repeating it with the same token is harmless.',
  kind: 'write',
  idempotent: true,
  verbatim: VERBATIM,
  input: z
    .object({
      id: taskId.describe('The task id'),
      token,
      summary: z.string().min(1).max(L.summary).describe('What was done'),
      evidence: z
        .array(z.string().min(1).max(L.evidenceItem))
        .max(L.evidence)
        .optional()
        .describe('Files changed, tests added, commands run'),
      claimNext: z.boolean().optional().describe('Also claim your next task (as loki_task_claim)'),
      agent,
    })
    .strict(),
  handler: async (args, ctx) => {
    const r = await completeTask(
      ctx.project,
      args.id,
      args.token,
      args.summary,
      args.evidence ?? [],
      args.claimNext ? { agent: args.agent ?? ctx.session().id } : undefined,
    );
    // `claimed`, not `next`: every result's `next` is the step to take (tools/define.ts).
    const claimed = r.next && {
      task: r.next.task ? taskBrief(r.next.task) : null,
      token: r.next.token,
      leaseExpiresAt: r.next.task?.lease?.expiresAt ?? null,
      expired: r.next.expired,
      reason: r.next.reason,
    };
    // After the completion is committed, in a transaction of its own; coalesced, and never fails the completion.
    const checkpoint = r.repeated
      ? null
      : await autoCheckpoint(ctx.project, 'task-complete', `after task ${r.task.id}`);
    // The phase's last task done: an empty phase passes here rather than costing the agent a call.
    if (!r.next?.task) await passIdlePhases(ctx.project);
    return { task: taskBrief(r.task), repeated: r.repeated, claimed, checkpoint };
  },
  render: (r) =>
    `${r.repeated ? 'Already completed' : 'Completed'} ${r.task.id}: ${r.task.title.replace(/\.$/, '')}.${r.claimed?.task ? `\n${renderClaim(r.claimed)}` : ''}`,
  next: (r) => (r.claimed ? claimStep(r.claimed) : undefined),
});

export const taskFailTool = defineTool({
  name: 'loki_task_fail',
  title: 'Fail a task',
  description:
    'Report that your claimed task failed, with the error. It is retried later, and dead-lettered after the retry limit.',
  kind: 'write',
  idempotent: true,
  verbatim: VERBATIM,
  input: z
    .object({
      id: taskId.describe('The task id'),
      token,
      error: z.string().min(1).max(L.error).describe('What went wrong (kept for the next attempt)'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const r = await failTask(ctx.project, args.id, args.token, args.error);
    if (r.task.status === 'dead-letter') await passIdlePhases(ctx.project);
    return { task: taskBrief(r.task), failures: r.task.failures, repeated: r.repeated };
  },
  render: (r) =>
    `${r.repeated ? 'Already recorded: ' : ''}${r.task.id} ${r.task.status === 'dead-letter' ? `moved to dead-letter after ${r.failures} failures; move on to other work` : `failed (${r.failures} so far); it will be retried after other ready work`}.`,
});

export const taskUpdateTool = defineTool({
  name: 'loki_task_update',
  title: 'Update a task',
  description:
    'Edit fields, reprioritise, or act: release/renew (your token), block (reason), unblock, retry (from dead-letter).',
  kind: 'write',
  idempotent: false,
  verbatim: VERBATIM,
  input: z
    .object({
      id: taskId.describe('The task id'),
      title: fields.title.optional(),
      description: fields.description,
      priority: fields.priority,
      phase: z.enum(PHASES).optional().describe('Move it to this phase'),
      dependencies: z.array(taskId).max(L.dependencies).optional().describe('Replace the dependencies'),
      acceptance: fields.acceptance.describe('Replace the acceptance criteria'),
      action: z
        .enum(['release', 'renew', 'block', 'unblock', 'retry'])
        .optional()
        .describe('State change to apply after the edits'),
      token: token.optional(),
      reason: z.string().min(1).max(L.reason).optional().describe('Why (needed to block)'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const { id, action, token: t, reason, ...edit } = args;
    const task = await updateTask(ctx.project, { id, edit, action, token: t, reason });
    return { task: fullTask(task) };
  },
  render: (r) => `Updated ${r.task.id}: ${r.task.status}, ${r.task.priority}, ${r.task.phase}: ${r.task.title}`,
});

export const taskTools = [taskAddTool, taskListTool, taskClaimTool, taskCompleteTool, taskFailTool, taskUpdateTool];

/** A task in full for responses, with the claim token left out (only its holder has it). */
function fullTask(t: Task) {
  const { lease, attempts, ...rest } = t;
  return {
    ...rest,
    lease: lease && { agent: lease.agent, claimedAt: lease.claimedAt, expiresAt: lease.expiresAt },
    attempts: attempts.slice(-10).map(({ token: _token, ...a }) => a),
  };
}

function renderFull(t: ReturnType<typeof fullTask>): string {
  return [
    `${t.id} [${t.status}] ${t.priority} ${t.phase}: ${t.title}`,
    t.description && `Description: ${t.description}`,
    t.dependencies.length ? `Depends on: ${t.dependencies.join(', ')}` : '',
    t.acceptance.length ? `Acceptance:\n${t.acceptance.map((a) => `- ${a}`).join('\n')}` : '',
    t.source.section ? `Source: ${t.source.kind}, ${t.source.section}` : `Source: ${t.source.kind}`,
    t.lease ? `Held by ${t.lease.agent} until ${t.lease.expiresAt}` : '',
    t.blockedReason ? `Blocked: ${t.blockedReason}` : '',
    t.attempts.length
      ? `Attempts:\n${t.attempts.map((a) => `- #${a.n} ${a.agent} ${a.outcome ?? 'in progress'}${a.error ? `: ${a.error}` : ''}`).join('\n')}`
      : '',
    t.completion ? `Completed by ${t.completion.agent}: ${t.completion.summary}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}
