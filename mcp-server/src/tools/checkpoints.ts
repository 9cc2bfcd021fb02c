/** Checkpoint tools: loki_checkpoint_create, loki_checkpoint_list, loki_rollback. */
import { z } from 'zod';
import { CHECKPOINT_KINDS, selectLatest, type ChangeSummary } from '../domain/checkpoints.js';
import { readCatalog } from '../checkpoints/catalog.js';
import { createCheckpoint } from '../checkpoints/create.js';
import { checkpointRow } from '../checkpoints/records.js';
import { rollback, type RollbackResult } from '../checkpoints/rollback.js';
import { defineTool } from './define.js';

export const checkpointCreateTool = defineTool({
  name: 'loki_checkpoint_create',
  title: 'Create a checkpoint',
  description:
    'Snapshot the run state (.loki/) and, in git, every non-ignored file; branch, index and stash untouched. Manual checkpoints are never pruned.',
  kind: 'write',
  idempotent: false,
  input: z
    .object({
      label: z.string().min(1).max(200).optional().describe('Short name, e.g. "auth works"'),
      reason: z.string().min(1).max(2000).optional().describe('Why this is a good point to return to'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const out = createCheckpoint(ctx.project, {
      kind: 'manual',
      trigger: 'manual',
      label: args.label?.trim() || 'manual checkpoint',
      reason: args.reason ?? null,
    });
    if (!('created' in out)) throw new Error('internal: a manual checkpoint is never coalesced');
    return { checkpoint: checkpointRow(out.created), stateRows: out.created.state.rows, pruned: out.pruned };
  },
  render: (r) =>
    `Checkpoint ${r.checkpoint.id} "${r.checkpoint.label}" (${r.checkpoint.scope}${r.checkpoint.note ? `: ${r.checkpoint.note}` : ''}). Undo later with loki_rollback target "${r.checkpoint.id}".`,
});

export const checkpointListTool = defineTool({
  name: 'loki_checkpoint_list',
  title: 'List checkpoints',
  description:
    'Checkpoints, newest first, with kind and scope; damaged ones flagged. `latest` is what loki_rollback "latest" restores.',
  kind: 'read',
  idempotent: true,
  input: z
    .object({
      kind: z.enum(CHECKPOINT_KINDS).optional().describe('Only this kind'),
      limit: z.number().int().min(1).max(100).optional().describe('Rows (default 20)'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const store = ctx.project.existingStore();
    const catalog = store ? readCatalog(store) : { records: [], damaged: [] };
    const matching = catalog.records.filter((r) => !args.kind || r.type === args.kind).reverse();
    return {
      checkpoints: matching.slice(0, args.limit ?? 20).map(checkpointRow),
      total: matching.length,
      latest: selectLatest(catalog.records)?.id ?? null,
      damaged: catalog.damaged.slice(0, 20).map((d) => ({ id: d.id, problem: d.problem })),
    };
  },
  render: (r) => {
    if (r.total === 0 && r.damaged.length === 0) return 'No checkpoints yet (loki_checkpoint_create takes one).';
    const lines = r.checkpoints.map(
      (c) =>
        `${c.id} ${c.kind}${c.kind === 'auto' ? `/${c.trigger}` : ''} ${c.createdAt} ${c.phase ?? '-'} [${c.scope}] ${c.label}`,
    );
    if (r.total > r.checkpoints.length) lines.push(`... ${r.total - r.checkpoints.length} more (raise limit)`);
    for (const d of r.damaged) lines.push(`${d.id} DAMAGED: ${d.problem}`);
    if (r.latest) lines.push(`latest = ${r.latest}`);
    return lines.join('\n');
  },
});

export const rollbackTool = defineTool({
  name: 'loki_rollback',
  title: 'Roll back to a checkpoint',
  description:
    'Restore .loki/ state and, with code: true, the files exactly (later files removed; ignored files, .git, memory, audit log kept). Returns the pre-rollback checkpoint id that undoes it.',
  kind: 'destructive',
  idempotent: false,
  verbatim: ['target'],
  finishesRollback: true,
  input: z
    .object({
      target: z.string().min(1).max(64).describe('"latest" (newest that is not pre-rollback) or a checkpoint id'),
      code: z.boolean().describe('Also restore the working tree (git repositories only)'),
    })
    .strict(),
  handler: async (args, ctx): Promise<RollbackResult> => rollback(ctx.project, args.target, args.code),
  render: (r) =>
    [
      `${r.resumed ? 'Finished the interrupted rollback' : 'Rolled back'} to ${r.target} "${r.label}" (${r.scope}).`,
      r.changes.code ? `Files: ${counts(r.changes.code)}.` : '',
      `State: ${counts(r.changes.state)}.`,
      ...(r.changes.code?.paths ?? []),
      r.note ? `Note: ${r.note}.` : '',
      `Undo: loki_rollback target "${r.preRollback}" code ${r.codeRestored}.`,
    ]
      .filter(Boolean)
      .join('\n'),
});

function counts(s: ChangeSummary): string {
  return `${s.added} added, ${s.modified} modified, ${s.removed} removed`;
}

export const checkpointTools = [checkpointCreateTool, checkpointListTool, rollbackTool];
