/**
 * `/metrics` in the OpenMetrics text format (https://openmetrics.io), for Prometheus or any scraper. Counters that
 * count what happened (claims, lease expiries, audit entries) are read from the audit log, so they survive
 * restarts of the dashboard and count every process's work; the rest describes the current run.
 */
import type { Project } from '../project.js';
import { TASK_STATES, countStates } from '../domain/tasks.js';
import { readHookState } from '../run/hook-state.js';
import { readRun } from '../run/state.js';
import { listCouncils, outcomeOf } from '../trust/council.js';
import { listVerifications, verificationFindings } from '../verify/index.js';

type Labels = Record<string, string>;
interface Family {
  name: string;
  type: 'gauge' | 'counter' | 'summary' | 'info';
  help: string;
  unit?: string;
  samples: { suffix?: string; labels?: Labels; value: number }[];
}

/** Label values escaped as the format asks: backslash, double quote and line feed. */
const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# TYPE ${f.name} ${f.type}`);
    if (f.unit) out.push(`# UNIT ${f.name} ${f.unit}`);
    out.push(`# HELP ${f.name} ${escape(f.help)}`);
    for (const s of f.samples) {
      const labels = s.labels ? Object.entries(s.labels).map(([k, v]) => `${k}="${escape(v)}"`) : [];
      out.push(`${f.name}${s.suffix ?? ''}${labels.length ? `{${labels.join(',')}}` : ''} ${number(s.value)}`);
    }
  }
  out.push('# EOF');
  return `${out.join('\n')}\n`;
}

const number = (v: number) => (Number.isInteger(v) ? String(v) : String(Number(v.toFixed(6))));

export function metricsText(project: Project): string {
  const store = project.existingStore();
  const run = readRun(store);
  const actions = store?.audit.countByAction() ?? new Map<string, number>();
  const counted = (action: string) => actions.get(action) ?? 0;
  const families: Family[] = [];

  if (run)
    families.push({
      name: 'loki_run',
      type: 'info',
      help: 'The current run: its id, status, phase and tier.',
      samples: [
        {
          suffix: '_info',
          labels: { run_id: run.runId, status: run.status, phase: run.phase, tier: run.tier },
          value: 1,
        },
      ],
    });

  const tasks = run ? project.tasks().list({}).tasks : [];
  const byState = countStates(tasks);
  // Attempts tell how each ended, however it was recorded (an expiry found by a claim is in that claim's entry).
  const ended = (outcome: string) =>
    tasks.reduce((n, t) => n + t.attempts.filter((a) => a.outcome === outcome).length, 0);
  families.push({
    name: 'loki_tasks',
    type: 'gauge',
    help: 'Tasks of the current run, by state.',
    samples: TASK_STATES.map((state) => ({ labels: { state }, value: byState[state] })),
  });
  families.push(
    counter('loki_task_claims', 'Task claims recorded in the audit log.', counted('task.claim')),
    counter('loki_task_lease_expiries', "Attempts of the run's tasks whose lease ran out.", ended('expired')),
    counter('loki_task_failures', "Attempts of the run's tasks that failed.", ended('failed')),
  );

  const verifications = run ? listVerifications(project, run.runId) : [];
  const outcomes = { pass: 0, blocked: 0 };
  let seconds = 0;
  for (const v of verifications) {
    outcomes[verificationFindings(v).blocking.length === 0 ? 'pass' : 'blocked'] += 1;
    seconds += Math.max(0, Date.parse(v.finishedAt) - Date.parse(v.startedAt)) / 1000;
  }
  families.push({
    name: 'loki_verification_duration_seconds',
    type: 'summary',
    unit: 'seconds',
    help: "Time the server's verifications of the current run took.",
    samples: [
      { suffix: '_count', value: verifications.length },
      { suffix: '_sum', value: seconds },
    ],
  });
  families.push({
    name: 'loki_verifications',
    type: 'counter',
    help: 'Verifications of the current run, by outcome (blocked: a finding stops completion).',
    samples: (['pass', 'blocked'] as const).map((outcome) => ({
      suffix: '_total',
      labels: { outcome },
      value: outcomes[outcome],
    })),
  });

  const councils = run ? listCouncils(store, run.runId) : [];
  const councilOutcomes = new Map<string, number>();
  for (const c of councils) {
    const state = outcomeOf(c).state;
    councilOutcomes.set(state, (councilOutcomes.get(state) ?? 0) + 1);
  }
  families.push({
    name: 'loki_councils',
    type: 'counter',
    help: 'Councils of the current run, by outcome.',
    samples: [...councilOutcomes].map(([outcome, value]) => ({ suffix: '_total', labels: { outcome }, value })),
  });

  const hooks = readHookState(store, run?.runId ?? null);
  families.push(
    {
      name: 'loki_cost_usd',
      type: 'gauge',
      help: 'Spend of the current run as the Claude Code hooks measured it (0 for hosts that report none).',
      samples: [{ value: hooks.usage.costUsd }],
    },
    {
      name: 'loki_tokens',
      type: 'counter',
      help: 'Tokens of the current run, by kind, as the Claude Code hooks measured them.',
      samples: [
        ['input', hooks.usage.inputTokens],
        ['output', hooks.usage.outputTokens],
        ['cache_write', hooks.usage.cacheWriteTokens],
        ['cache_read', hooks.usage.cacheReadTokens],
      ].map(([kind, value]) => ({ suffix: '_total', labels: { kind: String(kind) }, value: Number(value) })),
    },
    {
      name: 'loki_context_tokens',
      type: 'gauge',
      help: "Tokens in the agent's context at its last tool call.",
      samples: [{ value: hooks.usage.contextTokens }],
    },
    counter('loki_audit_entries', 'Entries in the audit log.', store?.audit.count() ?? 0),
  );
  return render(families);
}

function counter(name: string, help: string, value: number): Family {
  return { name, type: 'counter', help, samples: [{ suffix: '_total', value }] };
}
