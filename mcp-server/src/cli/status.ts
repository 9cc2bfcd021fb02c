/** `loki status [--json]`: the run at a glance, for people. Read-only: it never counts a turn. */
import type { Project } from '../project.js';
import { briefing } from '../run/briefing.js';
import { repeatsAlert } from '../domain/notify.js';
import { listSessions } from '../run/sessions.js';
import { sessionLiveness } from '../run/records.js';
import { ago, print, printJson, table } from './output.js';

export async function statusCommand(project: Project, json: boolean): Promise<number> {
  const b = await briefing(project, undefined, { peek: true });
  const sessions = listSessions(project.existingStore()).map((s) => ({ ...s, liveness: sessionLiveness(s) }));
  if (json) {
    printJson({ ...b, sessions });
    return 0;
  }
  const lines: string[] = [`Project  ${b.project}`];
  if (!b.run) {
    lines.push('Run      none (start one from your agent: "Loki Mode" in Claude Code)');
  } else {
    const r = b.run;
    lines.push(`Run      ${r.runId}  ${r.status}  started ${ago(r.startedAt)}`);
    lines.push(
      `Spec     ${r.spec ? `${r.spec.path ?? 'inline text'}${r.spec.title ? `  "${r.spec.title}"` : ''}` : 'none'}`,
    );
    lines.push(`Tier     ${r.tier}`);
    lines.push(
      `Phases   ${r.phases.map((p) => (p === r.phase ? `[${p}]` : p)).join(' > ')}${r.phase === 'GROWTH' ? ' > [GROWTH]' : ''}`,
    );
    lines.push(`Turns    ${r.iteration} of ${r.maxIterations}`);
    lines.push(`Baseline ${r.baseline ? r.baseline.slice(0, 12) : 'none (not a git repository, or no snapshot)'}`);
  }
  if (b.queue) {
    const c = b.queue.counts;
    lines.push(
      `Tasks    ${b.queue.total === 0 ? 'none' : `${c.pending} pending, ${c['in-progress']} in progress, ${c.completed} completed, ${c.failed} failed, ${c.blocked} blocked, ${c['dead-letter']} dead-letter (loki tasks)`}`,
    );
  }
  const signals = [
    b.signals.pause && 'PAUSE',
    b.signals.stop && 'STOP',
    b.signals.humanInput.status !== 'none' && `HUMAN_INPUT (${b.signals.humanInput.status})`,
  ].filter(Boolean);
  lines.push(`Signals  ${signals.length ? signals.join(', ') : 'none'}`);
  lines.push(`Budget   ${b.budget.limitUsd === null ? 'no limit' : `$${b.budget.limitUsd}`}`);
  if (sessions.length) {
    lines.push('', 'Sessions');
    lines.push(
      table([
        ['id', 'provider', 'state', 'last seen', 'pid'],
        ...sessions.slice(0, 10).map((s) => [s.id, s.provider, s.liveness, ago(s.updatedAt), String(s.pid)]),
      ]),
    );
  }
  for (const a of b.alerts) lines.push(`Alert    ${a.level}: ${a.message}`);
  for (const p of b.problems) if (!repeatsAlert(p, b.alerts)) lines.push(`Problem  ${p}`);
  // The agent's next call, as its briefing says it; with no run, the Run line already tells the person what to do.
  if (b.run) lines.push('', `Next     ${b.next}`);
  print(lines.join('\n'));
  return 0;
}
