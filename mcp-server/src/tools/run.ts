/** Run & state tools: loki_start, loki_status, loki_phase_advance. */
import { z } from 'zod';
import { PHASES, TIERS } from '../domain/phases.js';
import { briefing, type Briefing } from '../run/briefing.js';
import { advancePhase, passIdlePhases, type AdvanceResult } from '../run/phase.js';
import { beginRun, type BeginResult } from '../run/begin.js';
import { defineTool } from './define.js';
import { MAX_PATH_BYTES } from '../store/paths.js';
import { repeatsAlert } from '../domain/notify.js';

export const startTool = defineTool({
  name: 'loki_start',
  title: 'Start or resume a run',
  description:
    'Begin a run from a spec, or resume the active one (no arguments after a restart): registers this session, ' +
    'records the git baseline, detects the tier and queues tasks from the spec. Then call loki_status every turn.',
  kind: 'write',
  idempotent: false,
  verbatim: ['spec'],
  input: z
    .object({
      spec: z
        .string()
        .max(MAX_PATH_BYTES)
        .optional()
        .describe('Path of the spec file, relative to the project root (Markdown/JSON PRD, OpenAPI, text)'),
      specText: z
        .string()
        .max(1024 * 1024)
        .optional()
        .describe('The spec itself, when it is not in a file'),
      tier: z.enum(TIERS).optional().describe('Force the complexity tier instead of detecting it'),
      restart: z.boolean().optional().describe('Archive the active run and start a new one from this spec'),
    })
    .strict(),
  handler: (args, ctx): Promise<BeginResult> => beginRun(ctx.project, args, ctx.session()),
  render: (r) =>
    [
      `${r.resumed ? 'Resumed' : 'Started'} run ${r.run.runId} (${r.run.tier} tier, ${r.run.tierSource}): phase ${r.run.phase}, iteration ${r.run.iteration}.`,
      `Phases: ${phasesLine(r.run.tier)}.`,
      r.run.spec
        ? `Spec: ${r.run.spec.path ?? 'inline text'}${r.run.spec.title ? ` "${r.run.spec.title}"` : ''} (copy at .loki/${r.run.spec.copy}).`
        : '',
      r.run.git.baselineCommit
        ? `Git baseline ${r.run.git.baselineCommit.slice(0, 12)}${r.run.git.note ? ` (${r.run.git.note})` : ''}.`
        : `Git: ${r.run.git.note ?? 'none'}.`,
      r.tasks.queued > 0 ? `Queued ${r.tasks.queued} task(s) from the ${r.tasks.kind} spec.` : '',
      ...r.tasks.notes.map((n) => `Note: ${n}`),
      r.archivedRunId ? `Archived the previous run ${r.archivedRunId}.` : '',
      r.passed.length
        ? `Passed ${r.passed.join(', ')}: nothing to do there (exit criteria hold); now in ${r.phaseNow}.`
        : '',
    ]
      .filter(Boolean)
      .join('\n'),
});

function phasesLine(tier: (typeof TIERS)[number]): string {
  return {
    simple: 'BOOTSTRAP > DEVELOPMENT > QA',
    standard: 'BOOTSTRAP > DISCOVERY > ARCHITECTURE > DEEPEN_PLAN > DEVELOPMENT > QA',
    complex: 'all 8',
  }[tier];
}

export const statusTool = defineTool({
  name: 'loki_status',
  title: 'Per-turn briefing',
  description:
    'Call first, every turn. Returns phase, tier, iteration, task counts with your claimed and the next ready task, signals (PAUSE/STOP/human input), budget, alerts, problems and one `next` step; ' +
    'counts the turn and heartbeats the session. `peek: true` only looks.',
  kind: 'write',
  idempotent: false,
  input: z
    .object({
      peek: z.boolean().optional().describe('Look without counting a turn, heartbeating or taking HUMAN_INPUT'),
    })
    .strict(),
  handler: async (args, ctx): Promise<Briefing> => {
    if (!args.peek) await passIdlePhases(ctx.project);
    return briefing(ctx.project, ctx.session(), { peek: args.peek ?? false });
  },
  render: renderBriefing,
  next: (b) => b.next,
});

export function renderBriefing(b: Briefing): string {
  const lines: string[] = [];
  if (!b.run) lines.push(`No run in ${b.project}.`);
  else {
    const r = b.run;
    lines.push(
      `Run ${r.runId} ${r.status}: phase ${r.phase} (${r.phases.indexOf(r.phase) + 1}/${r.phases.length}, ${r.tier}), iteration ${r.iteration}/${r.maxIterations}.`,
    );
  }
  const flags = [b.signals.stop && 'STOP', b.signals.pause && 'PAUSE'].filter(Boolean);
  if (flags.length) lines.push(`Signals: ${flags.join(', ')}.`);
  const h = b.signals.humanInput;
  if (h.status === 'delivered')
    lines.push(`Human input (user-provided data, archived at .loki/${h.archivedAs}):\n<<<\n${h.text}\n>>>`);
  else if (h.status !== 'none') lines.push(`Human input ${h.status}: ${h.reason}`);
  if (b.budget.limitUsd !== null)
    lines.push(
      `Budget: limit $${b.budget.limitUsd}${b.budget.spentUsd !== null ? `, spent $${b.budget.spentUsd}` : ''}.`,
    );
  const q = b.queue;
  if (q && q.total > 0) {
    const c = q.counts;
    lines.push(
      `Tasks: ${c.pending} pending, ${c['in-progress']} in progress, ${c.completed} completed, ${c.failed} failed, ${c.blocked} blocked, ${c['dead-letter']} dead-letter; ${q.openInPhase} open in this phase.`,
    );
    for (const m of q.mine)
      lines.push(`Yours: ${m.id} "${m.title}" (lease ${m.expired ? 'expired' : `until ${m.expiresAt}`}).`);
    if (q.next) lines.push(`Next ready: ${q.next.id} (${q.next.priority}) "${q.next.title}".`);
  } else if (q) lines.push('Tasks: none yet.');
  const t = b.trust;
  if (t) {
    const parts = [
      t.checklist &&
        `checklist ${t.checklist.met}/${t.checklist.total} met${t.checklist.failing ? `, ${t.checklist.failing} failing` : ''}`,
      t.verification
        ? `last verify ${t.verification.id} (tests ${t.verification.tests}${t.verification.blocking ? `, ${t.verification.blocking} blocking` : ''})`
        : 'not verified yet',
      t.council &&
        `council ${t.council.id} ${t.council.state}${t.council.state === 'voting' ? ` ${t.council.cast}/${t.council.size}` : ''}`,
      t.councilDue && 'council check due',
    ].filter(Boolean);
    lines.push(`Trust: ${parts.join('; ')}.`);
  }
  for (const a of b.alerts) lines.push(`Alert ${a.level}: ${a.message}`);
  for (const p of b.problems) if (!repeatsAlert(p, b.alerts)) lines.push(`Problem: ${p}`);
  return lines.join('\n');
}

export const phaseAdvanceTool = defineTool({
  name: 'loki_phase_advance',
  title: 'Advance the phase',
  description:
    "Move to the next phase of the run's tier; refused with reasons until the current phase's exit criteria hold. " +
    'Going back (e.g. QA to DEVELOPMENT) needs a reason.',
  kind: 'write',
  idempotent: false,
  input: z
    .object({
      to: z.enum(PHASES).optional().describe('Target phase; default the next one. Earlier phases need a reason'),
      reason: z.string().max(2000).optional().describe('Why (required when going back)'),
    })
    .strict(),
  handler: (args, ctx): Promise<AdvanceResult> => advancePhase(ctx.project, args.to, args.reason),
  render: (r) =>
    r.ok
      ? `Phase ${r.from} -> ${r.to}.`
      : `Refused: ${r.from} -> ${r.to ?? '(none)'} is not allowed yet:\n${r.reasons.map((x) => `- ${x}`).join('\n')}`,
});

export const runTools = [startTool, statusTool, phaseAdvanceTool];
