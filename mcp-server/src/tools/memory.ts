/** Memory tools: loki_memory_record, loki_memory_search, loki_memory_get, loki_memory_consolidate, loki_learn. */
import { z } from 'zod';
import { PHASES } from '../domain/phases.js';
import { LAYERS, LIMITS, OUTCOMES } from '../memory/model.js';
import {
  DATA_NOTICE,
  MAX_LIMIT,
  SCOPES,
  consolidateMemory,
  getMemory,
  projectName,
  recordMemory,
  searchMemory,
  type FullItem,
  type IndexEntry,
} from '../memory/service.js';
import { writeSolution } from '../memory/solutions.js';
import { defineTool, type ToolContext } from './define.js';

const text = (max: number) => z.string().max(max);
const list = (max: number, each: number) => z.array(z.string().max(each)).max(max);
const source = (ctx: ToolContext) => `mcp:${ctx.session().provider}`;

export const memoryRecordTool = defineTool({
  name: 'loki_memory_record',
  title: 'Record a memory',
  description:
    'Store an episode (what a task tried, what happened), a pattern/anti-pattern or a skill (steps that worked). Secrets scrubbed; provenance kept.',
  kind: 'write',
  idempotent: false,
  verbatim: ['sources', 'task'],
  reportsRedactions: true,
  input: z
    .object({
      layer: z.enum(LAYERS).describe('episode | pattern | skill'),
      title: text(LIMITS.title).min(1).describe('One line'),
      body: text(LIMITS.body).optional().describe('Details'),
      outcome: z.enum(OUTCOMES).optional().describe('Episode (required)'),
      errors: list(LIMITS.list, LIMITS.item).optional().describe('Error messages'),
      lessons: list(LIMITS.list, LIMITS.item).optional().describe('Lessons'),
      files: list(LIMITS.files, LIMITS.file).optional().describe('Paths'),
      steps: list(LIMITS.steps, LIMITS.item).optional().describe('Skill (required)'),
      when: text(LIMITS.item).optional().describe('Pattern/skill: when it applies'),
      antiPattern: z.boolean().optional().describe('Pattern: to avoid'),
      confidence: z.number().min(0).max(1).optional().describe('Pattern: 0-1'),
      sources: z.array(z.string().max(LIMITS.ref)).max(LIMITS.list).optional().describe('Episode ids'),
      tags: list(LIMITS.tags, LIMITS.tag).optional().describe('Tags'),
      phase: z.enum(PHASES).optional().describe('Phase'),
      taskType: text(LIMITS.taskType).optional().describe('e.g. bugfix'),
      task: text(LIMITS.ref).optional().describe('Task id'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const r = await recordMemory(ctx.project, args, source(ctx));
    const input = ctx.scrubbed ?? { redacted: 0, kinds: [] };
    // What define.ts took out of the input before the service scrubbed the item again: one count for both.
    return {
      ...r,
      redacted: r.redacted + input.redacted,
      redactedKinds: [...new Set([...r.redactedKinds, ...input.kinds])].sort(),
    };
  },
  render: (r) =>
    [
      `Recorded ${r.layer} ${r.id}: ${r.title}`,
      r.redacted ? `Scrubbed ${r.redacted} secret(s) (${r.redactedKinds.join(', ')}) before storing.` : '',
      r.flags.length ? `Flagged: ${r.flags.join(', ')}.` : '',
    ]
      .filter(Boolean)
      .join('\n'),
});

function entryLine(e: IndexEntry): string {
  const p = e.provenance;
  const meta = [
    e.layer,
    e.outcome,
    p.at.slice(0, 16),
    p.run && `run ${p.run}`,
    p.task && `task ${p.task}`,
    p.source,
    ...e.flags,
  ]
    .filter(Boolean)
    .join(', ');
  return `- ${e.id} (${e.score}) ${JSON.stringify(e.title)} [${meta}]`;
}

export const memorySearchTool = defineTool({
  name: 'loki_memory_search',
  title: 'Search memory',
  description:
    'Ranked search of project memory and solutions. detail index: ids, titles, scores; timeline (with id): items around it. Full items: loki_memory_get.',
  kind: 'read',
  idempotent: true,
  input: z
    .object({
      query: text(1000).optional().describe('Search words'),
      layer: z.enum(LAYERS).optional().describe('Filter'),
      tags: list(LIMITS.tags, LIMITS.tag).optional().describe('All match'),
      phase: z.enum(PHASES).optional().describe('Filter'),
      taskType: text(LIMITS.taskType).optional().describe('Boost'),
      scope: z.enum(SCOPES).optional().describe('Default both'),
      limit: z.number().int().min(1).max(MAX_LIMIT).optional().describe('Default 5'),
      detail: z.enum(['index', 'timeline']).optional().describe('Default index'),
      id: text(LIMITS.ref + 10)
        .optional()
        .describe('For timeline'),
    })
    .strict(),
  handler: async (args, ctx) => searchMemory(ctx.project, args),
  render: (r) => {
    const head =
      r.detail === 'timeline'
        ? `Timeline around ${r.anchor} (same ${r.context}; ${r.results.length} of ${r.matched}). ${DATA_NOTICE}`
        : r.results.length
          ? `${r.results.length} of ${r.matched} for ${JSON.stringify(r.query)}. ${DATA_NOTICE}`
          : `No memories match ${JSON.stringify(r.query)}.`;
    return [
      head,
      ...r.results.map(entryLine),
      ...r.problems.map((p) => `Problem: ${p}`),
      r.results.length ? 'Full items: loki_memory_get with ids.' : '',
    ]
      .filter(Boolean)
      .join('\n');
  },
});

function renderFull(i: FullItem): string {
  const p = i.provenance;
  const lines = [
    `## ${i.id} (${i.layer}) ${JSON.stringify(i.title)}`,
    `provenance: ${p.at}${p.run ? `, run ${p.run}` : ''}${p.task ? `, task ${p.task}` : ''}, ${p.source}`,
  ];
  if (i.layer === 'solution') {
    if (i.symptoms.length) lines.push(`symptoms: ${i.symptoms.join(' | ')}`);
    if (i.root_cause) lines.push(`root cause: ${i.root_cause}`);
    if (i.prevention) lines.push(`prevention: ${i.prevention}`);
    if (i.body) lines.push(i.body);
  } else {
    if (i.outcome) lines.push(`outcome: ${i.outcome}`);
    if (i.layer === 'pattern')
      lines.push(
        `${i.antiPattern ? 'anti-pattern' : 'pattern'}${i.confidence !== null ? `, confidence ${i.confidence}` : ''}`,
      );
    if (i.when) lines.push(`when: ${i.when}`);
    if (i.body) lines.push(i.body);
    if (i.errors.length) lines.push(`errors: ${i.errors.join(' | ')}`);
    if (i.lessons.length) lines.push(`lessons: ${i.lessons.join(' | ')}`);
    if (i.steps.length) lines.push(...i.steps.map((s, n) => `${n + 1}. ${s}`));
    if (i.files.length) lines.push(`files: ${i.files.join(', ')}`);
    if (i.sources.length) lines.push(`from episodes: ${i.sources.join(', ')}`);
    if (i.usedBy.length) lines.push(`used by: ${i.usedBy.join(', ')}`);
    if (i.flags.length) lines.push(`flags: ${i.flags.join(', ')}`);
  }
  if (i.truncated) lines.push('(truncated to fit the response)');
  return lines.join('\n');
}

export const memoryGetTool = defineTool({
  name: 'loki_memory_get',
  title: 'Get memories',
  description: 'Full items and solutions by id, with provenance.',
  kind: 'read',
  idempotent: true,
  input: z
    .object({
      ids: z
        .array(text(LIMITS.ref + 10))
        .min(1)
        .max(MAX_LIMIT)
        .describe('Item ids'),
    })
    .strict(),
  handler: async (args, ctx) => getMemory(ctx.project, args.ids),
  render: (r) =>
    [
      r.items.length ? DATA_NOTICE : 'No such items.',
      ...r.items.map(renderFull),
      r.missing.length ? `Not found: ${r.missing.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('\n\n'),
});

export const memoryConsolidateTool = defineTool({
  name: 'loki_memory_consolidate',
  title: 'Consolidate memory',
  description:
    'Merge similar episodes into linked patterns (anti-patterns if most failed). Keeps episodes; idempotent.',
  kind: 'write',
  idempotent: true,
  input: z
    .object({
      minGroup: z.number().int().min(2).max(20).optional().describe('Default 2'),
      dryRun: z.boolean().optional().describe('Only report'),
    })
    .strict(),
  handler: (args, ctx) => consolidateMemory(ctx.project, args, 'consolidation'),
  render: (r) =>
    `${r.dryRun ? 'Would consolidate' : 'Consolidated'} ${r.considered} episodes into ${r.groups} group(s): ${r.created.length} new, ${r.updated.length} updated, ` +
    `${r.unchanged.length} unchanged, ${r.superseded.length} superseded pattern(s).${r.created.length ? `\nNew: ${r.created.join(', ')}` : ''}`,
});

export const learnTool = defineTool({
  name: 'loki_learn',
  title: 'Save a cross-project solution',
  description: 'Save a cross-project solution, searchable from any project. Same category+slug updates it.',
  kind: 'write',
  idempotent: true,
  verbatim: ['slug'],
  reportsRedactions: true,
  input: z
    .object({
      category: text(64).describe('kebab-case, e.g. build-errors'),
      slug: text(64).optional().describe('kebab-case; default from title'),
      title: text(LIMITS.title).min(1).describe('One line'),
      symptoms: list(LIMITS.list, LIMITS.item).optional().describe('What was seen'),
      rootCause: text(4000).optional().describe('Why'),
      prevention: text(4000).optional().describe('How to avoid'),
      tags: list(LIMITS.tags, LIMITS.tag).optional().describe('Tags'),
      body: text(LIMITS.body).optional().describe('Markdown'),
    })
    .strict(),
  handler: async (args, ctx) => {
    const r = writeSolution(ctx.project.lokiHome, args, projectName(ctx.project));
    return { ...r, redacted: r.redacted + (ctx.scrubbed?.redacted ?? 0) };
  },
  render: (r) =>
    `${r.created ? 'Saved' : 'Updated'} solution ${r.id} (${r.file}).${r.redacted ? ` Scrubbed ${r.redacted} secret(s).` : ''}`,
});

export const memoryTools = [memoryRecordTool, memorySearchTool, memoryGetTool, memoryConsolidateTool, learnTool];
