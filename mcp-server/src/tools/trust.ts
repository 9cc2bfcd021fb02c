/** Trust tools: loki_checklist_get/set, loki_council_convene/vote, loki_complete (loki_verify is in verify.ts). */
import { z } from 'zod';
import {
  CHECK_KINDS,
  CHECK_LIMITS,
  HTTP_STATUS,
  ITEM_TEXT_CHARS,
  ITEM_TEXT_MIN_CHARS,
  type MachineCheck,
} from '../domain/checklist.js';
import { MAX_COUNCIL_SIZE, VOTES } from '../domain/council.js';

import { safeParse } from '../store/schema.js';
import { editChecklist, getChecklist, type ChecklistView } from '../trust/checklist.js';
import { completeRun, type CompleteResult } from '../trust/complete.js';
import { castVote, convene, type ConveneResult, type VoteResult } from '../trust/council.js';
import { machineCheck } from '../trust/records.js';
import { defineTool } from './define.js';
import { voteStep } from '../run/next-step.js';
import { UsageError } from '../errors.js';

/** One flat object in the schema (the tool list stays small); each kind's fields are checked on the way in. */
const checkInput = z
  .object({
    kind: z.enum(CHECK_KINDS),
    path: z.string().max(CHECK_LIMITS.path).optional().describe('file-exists, file-contains: path inside the project'),
    text: z.string().max(CHECK_LIMITS.text).optional().describe('file-contains: text the file must contain'),
    check: z.enum(['test', 'build', 'lint']).optional().describe('command: which configured check must pass'),
    url: z.string().max(CHECK_LIMITS.url).optional().describe('http: loopback URL to GET'),
    status: z.number().int().min(HTTP_STATUS.min).max(HTTP_STATUS.max).optional().describe('http: expected status'),
    contains: z.string().max(CHECK_LIMITS.contains).optional().describe('http: text the body must contain'),
  })
  .strict();

function toMachineCheck(input: z.infer<typeof checkInput>): MachineCheck {
  const fields = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const r = safeParse(machineCheck, fields);
  if (r.success) return r.data;
  const need = {
    'file-exists': 'path',
    'file-contains': 'path and text',
    command: 'check (test, build or lint)',
    'tests-pass': 'nothing else',
    http: 'url and status (contains optional)',
  }[input.kind];
  throw new UsageError(
    `a ${input.kind} check takes ${need}; got ${
      Object.keys(fields)
        .filter((k) => k !== 'kind')
        .join(', ') || 'no fields'
    }`,
  );
}

export const checklistGetTool = defineTool({
  name: 'loki_checklist_get',
  title: 'Read the checklist',
  description:
    'The completion checklist derived from the spec: each item, its machine check and status. Completion needs every item met or waived.',
  kind: 'read',
  idempotent: true,
  input: z.object({}).strict(),
  handler: async (_args, ctx): Promise<ChecklistView> => getChecklist(ctx.project),
  render: renderChecklist,
});

export const checklistSetTool = defineTool({
  name: 'loki_checklist_set',
  title: 'Refine the checklist',
  description:
    'Add items, attach machine checks (file-exists, file-contains, command, tests-pass, http on loopback), mark an item without a check met with evidence, or waive one with a reason (shown in the receipt). Spec items cannot be removed.',
  kind: 'write',
  idempotent: false,
  verbatim: ['id', 'path'],
  input: z
    .object({
      items: z
        .array(
          z
            .object({
              id: z.string().max(40).optional().describe('Item to change; omit to add a new item'),
              text: z
                .string()
                .min(ITEM_TEXT_MIN_CHARS)
                .max(ITEM_TEXT_CHARS)
                .optional()
                .describe('Text of a new (or agent-added) item'),
              check: checkInput.nullable().optional().describe('Machine check the server runs; null removes it'),
              status: z
                .enum(['open', 'met'])
                .optional()
                .describe('"met" (items without a check; needs evidence) or "open"'),
              evidence: z.string().max(2000).optional().describe('What shows the item holds'),
              waive: z.string().max(2000).optional().describe('Reason to waive the item'),
              remove: z.boolean().optional().describe('Remove an agent-added item'),
            })
            .strict(),
        )
        .min(1)
        .max(50)
        .describe('Edits, applied all or none'),
    })
    .strict(),
  handler: (args, ctx) =>
    editChecklist(
      ctx.project,
      args.items.map((i) => ({ ...i, check: i.check && toMachineCheck(i.check) })),
    ),
  render: (r) => `Changed ${r.changed.join(', ')}.\n${renderChecklist(r)}`,
});

function renderChecklist(v: ChecklistView): string {
  const c = v.counts;
  const lines = [
    `Checklist of ${v.runId}: ${c.total} items, ${c.met} met, ${c.open} open, ${c.failing} failing, ${c.waived} waived.`,
  ];
  for (const i of v.items) {
    const state =
      i.status === 'waived'
        ? 'waived'
        : i.check
          ? i.result
            ? i.result.ok
              ? 'passes'
              : `FAILS: ${i.result.detail}`
            : `${i.check.kind} check not run`
          : i.status;
    lines.push(`- ${i.id}${i.heldOut ? ' [held-out]' : ''} ${state}: ${i.text}`);
  }
  return lines.join('\n');
}

export const councilConveneTool = defineTool({
  name: 'loki_council_convene',
  title: 'Convene the completion council',
  description:
    "After loki_verify, claim completion: returns the first seat's brief (each vote returns the next); give each to a fresh subagent, or vote them one at a time. While a council votes on this code, returns the brief whose turn it is. Reveals the held-out checklist items.",
  kind: 'write',
  idempotent: false,
  input: z
    .object({ reason: z.string().max(500).optional().describe('Why now (default: completion claimed)') })
    .strict(),
  handler: (args, ctx): Promise<ConveneResult> => convene(ctx.project, ctx.session(), args.reason),
  render: (r) =>
    [
      `Council ${r.council}${r.resumed ? ' (voting)' : ''}: ${r.size} members, ${r.threshold} approvals needed, judging ${r.verification}. Votes are blind.`,
      `=== seat ${r.brief.seat}: ${r.brief.role} ===\n${r.brief.prompt}`,
    ].join('\n'),
  next: (r) => voteStep(r.council, r.brief.seat, r.heldOutToJudge),
});

export const councilVoteTool = defineTool({
  name: 'loki_council_vote',
  title: 'Cast a council vote',
  description:
    "One member's blind vote, citing fact keys from the brief. Answers only how many votes are in until the tally; a unanimous approval then asks the devil's advocate (seat 0), who can veto.",
  kind: 'write',
  idempotent: false,
  verbatim: ['council', 'id'],
  input: z
    .object({
      council: z.string().max(20).describe('Council id from loki_council_convene, e.g. "k001"'),
      seat: z
        .number()
        .int()
        .min(0)
        .max(MAX_COUNCIL_SIZE)
        .describe("Seat number from the brief; 0 is the devil's advocate"),
      vote: z.enum(VOTES).describe('cannot-validate counts against'),
      rationale: z.string().min(10).max(4000).describe('Why, in a few sentences'),
      evidence: z
        .array(z.string().min(1).max(300))
        .min(1)
        .max(30)
        .describe('Fact keys from the brief, each optionally followed by words'),
      items: z
        .array(z.object({ id: z.string().max(40), met: z.boolean(), note: z.string().max(1000) }).strict())
        .max(50)
        .optional()
        .describe('Verdicts on held-out items without a machine check (required to approve)'),
    })
    .strict(),
  handler: (args, ctx): Promise<VoteResult> => castVote(ctx.project, ctx.session(), args),
  render: (r) => {
    if (r.outcome === 'voting')
      return [
        `Vote recorded for seat ${r.seat} of ${r.council}: ${r.cast} of ${r.size} in (the others stay hidden until the tally).`,
        ...(r.nextBrief ? [`=== seat ${r.nextBrief.seat}: ${r.nextBrief.role} ===\n${r.nextBrief.prompt}`] : []),
      ].join('\n');
    if (r.devilsAdvocate)
      return `All ${r.size} approved. The devil's advocate must now review (seat 0):\n${r.devilsAdvocate.prompt}`;
    const t = r.tally!;
    return t.state === 'approved'
      ? `Council ${r.council} approved (${t.approvals} of ${r.size}${t.unanimous ? ", confirmed by the devil's advocate" : ''}).${r.workReasons ? ` Before loki_complete, the work: ${r.workReasons.join('; ')}` : ''}`
      : `Council ${r.council} rejected:\n${t.state === 'rejected' ? t.reasons.map((x) => `- ${x}`).join('\n') : ''}`;
  },
  next: (r) =>
    r.nextBrief
      ? voteStep(r.council, r.nextBrief.seat, r.heldOutToJudge)
      : r.devilsAdvocate
        ? voteStep(r.council, 0, [])
        : undefined,
});

export const completeTool = defineTool({
  name: 'loki_complete',
  title: 'Claim completion',
  description:
    "The completion gate: accepted only when every task is done in the tier's last phase (or a person waived them), the latest loki_verify covers the current code and passed with tests, the checklist (held-out items too) is met or waived, and the council approved; then writes the evidence receipt. Otherwise CONTINUE with every reason.",
  kind: 'write',
  idempotent: false,
  input: z.object({}).strict(),
  handler: (_args, ctx): Promise<CompleteResult> => completeRun(ctx.project, ctx.session()),
  render: (r) =>
    r.status === 'COMPLETE'
      ? `COMPLETE: ${r.headline}. Receipt: ${r.receipt}.`
      : `CONTINUE: completion refused for ${r.reasons.length} reason(s):\n${r.reasons.map((x) => `- ${x}`).join('\n')}`,
  // Refused: the reasons above say what to do; the briefing's step could name loki_complete again.
  next: (r) =>
    r.status === 'CONTINUE'
      ? { note: 'address the reasons above (each says how), then call loki_status for the next step' }
      : undefined,
});

export const trustTools = [checklistGetTool, checklistSetTool, councilConveneTool, councilVoteTool, completeTool];
