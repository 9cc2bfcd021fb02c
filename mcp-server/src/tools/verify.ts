/** Verification tool: loki_verify. */
import { z } from 'zod';
import { CHECK_NAMES } from '../domain/checks.js';
import {
  REMOVAL_REASON_CHARS,
  runVerification,
  verificationFindings,
  type VerificationRecord,
} from '../verify/index.js';
import { verificationFile } from '../verify/record.js';
import { countItems, visibleItems, type Checklist } from '../domain/checklist.js';
import { evaluateChecklist } from '../trust/checklist.js';
import { toFacts } from '../trust/facts.js';
import { defineTool } from './define.js';

const LIST_CAP = 20;
const TAIL_CHARS = 1500;

export const verifyTool = defineTool({
  name: 'loki_verify',
  title: 'Verify the work',
  description:
    'The server runs the build, test and lint checks itself and records facts: exit codes, test counts, the diff since the run baseline, deleted or newly skipped tests, secrets in changed files. Returns what blocks completion.',
  kind: 'write',
  idempotent: false,
  input: z
    .object({
      only: z
        .array(z.enum(CHECK_NAMES))
        .min(1)
        .max(3)
        .optional()
        .describe('Run only these checks (default all; completion needs a full run)'),
      testRemovalReason: z
        .string()
        .trim()
        .min(REMOVAL_REASON_CHARS.min)
        .max(REMOVAL_REASON_CHARS.max)
        .optional()
        .describe(
          'Only when tests of the baseline were rightly removed, renamed or thinned (the spec drops a feature, tests merged): why. The council judges it; the receipt shows it',
        ),
    })
    .strict(),
  handler: async (args, ctx) => {
    const record = await runVerification(ctx.project, { only: args.only, testRemovalReason: args.testRemovalReason });
    // The checklist's machine checks are judged against these facts (held-out items too, but only visible ones show).
    const list = await evaluateChecklist(ctx.project, record.runId, toFacts(record));
    return { ...summary(record), checklist: list ? checklistBrief(list) : null };
  },
  render: (s) => renderSummary(s),
});

export const verifyTools = [verifyTool];

type Summary = ReturnType<typeof summary> & { checklist: ReturnType<typeof checklistBrief> | null };

function checklistBrief(list: Checklist) {
  const items = visibleItems(list);
  const failing = items
    .filter((i) => i.check && i.status !== 'waived' && i.result && !i.result.ok)
    .map((i) => ({ id: i.id, text: i.text, detail: i.result!.detail }));
  return { counts: countItems(items), failing: capped(failing) };
}

function capped<T>(items: T[]): { items: T[]; more: number } {
  return { items: items.slice(0, LIST_CAP), more: Math.max(0, items.length - LIST_CAP) };
}

function summary(r: VerificationRecord) {
  const f = verificationFindings(r);
  return {
    id: r.id,
    /** The record's key in .loki/loki.db (`loki proof` and the dashboard show it). */
    record: verificationFile(r.runId, r.id),
    codeState: r.codeState,
    checks: r.checks.map((c) => ({
      name: c.name,
      verdict: c.verdict,
      reason: c.reason,
      command: c.command,
      exitCode: c.exitCode,
      durationMs: c.durationMs,
      tests: c.tests && { passed: c.tests.passed, failed: c.tests.failed, skipped: c.tests.skipped },
      outputTail: c.verdict === 'fail' || c.verdict === 'inconclusive' ? c.outputTail.slice(-TAIL_CHARS) : '',
    })),
    diff: r.diff.available
      ? { filesChanged: r.diff.filesChanged, insertions: r.diff.insertions, deletions: r.diff.deletions }
      : null,
    deletedTestFiles: capped(r.testFiles.deleted),
    newlySkipped: capped(r.testFiles.newlySkipped),
    secrets: capped(r.secrets.findings),
    blocking: capped(f.blocking),
    gaps: f.gaps,
    toJudge: f.toJudge,
  };
}

function renderSummary(s: Summary): string {
  const lines = [
    `Verification ${s.id} (${s.record}): ${s.blocking.items.length === 0 ? 'nothing blocks completion' : `${s.blocking.items.length + s.blocking.more} blocking finding(s)`}.`,
  ];
  for (const c of s.checks) {
    const t = c.tests ? `, tests ${c.tests.passed} passed / ${c.tests.failed} failed / ${c.tests.skipped} skipped` : '';
    const ran =
      c.durationMs !== null ? ` exit ${c.exitCode ?? 'none'} in ${(c.durationMs / 1000).toFixed(1)} s${t}` : '';
    lines.push(`${c.name}: ${c.verdict.toUpperCase()}${c.command ? ` \`${c.command}\`` : ''}${ran}: ${c.reason}`);
  }
  lines.push(
    s.diff
      ? `Diff since baseline: ${s.diff.filesChanged} file(s), +${s.diff.insertions} -${s.diff.deletions}.`
      : 'Diff since baseline: unknown.',
  );
  if (s.blocking.items.length)
    lines.push(
      'Blocking:',
      ...s.blocking.items.map((b) => `- ${b}`),
      ...(s.blocking.more ? [`- ... ${s.blocking.more} more in the record`] : []),
    );
  if (s.checklist) {
    const c = s.checklist.counts;
    lines.push(
      `Checklist: ${c.met}/${c.total} met, ${c.failing} failing, ${c.open} open, ${c.waived} waived.`,
      ...s.checklist.failing.items.map((i) => `- ${i.id} fails: ${i.detail}`),
    );
  }
  if (s.toJudge.length) lines.push('For the council to judge:', ...s.toJudge.map((t) => `- ${t}`));
  if (s.gaps.length) lines.push('Gaps (the server cannot know):', ...s.gaps.map((g) => `- ${g}`));
  for (const c of s.checks) if (c.outputTail) lines.push(`--- ${c.name} output (tail) ---`, c.outputTail);
  return lines.join('\n');
}
