/**
 * Notification triggers (the `notify.*` settings): from what was measured (context size, spend, failed attempts,
 * dead-letters, the latest council) and the thresholds, the alerts that hold now. Pure: run/notify.ts gathers the
 * facts, records which alerts fired and runs the user's command.
 *
 * Each alert has a key naming its occurrence (`budget:10:80` for 80 % of a $10 limit, `context:95`, `council-rejected:k003`): an alert fires
 * once per key per run, so a threshold crossed again, or a council that stays rejected, is not announced twice,
 * while the step to critical, a further dead-letter or a new rejection is.
 */

export type AlertTrigger = 'context' | 'budget' | 'task-failures' | 'council-rejected';
export const ALERT_TRIGGERS: readonly AlertTrigger[] = ['context', 'budget', 'task-failures', 'council-rejected'];
export type AlertLevel = 'warning' | 'critical';

export interface Alert {
  trigger: AlertTrigger;
  /** Stable id of this occurrence: the same facts give the same key. */
  key: string;
  level: AlertLevel;
  /** For a person: what happened and the fix, or the command that shows more. */
  message: string;
  /** The measure (a %, a count), null when there is none (a council's rejection). */
  value: number | null;
  threshold: number | null;
}

export interface NotifyThresholds {
  /** % of the context window (1..100). */
  contextPct: number;
  /** % of the budget limit (1..100). */
  budgetPct: number;
  /** Failed attempts across the run's unfinished tasks (>= 1). */
  taskFailures: number;
  councilRejection: boolean;
}

/**
 * What the task-failures trigger measures: the failures of a run's tasks (counted by queue/queue.ts
 * TaskQueue.failures). A completed task's past failures no longer count, or the alert would hold for the rest of
 * the run.
 */
export interface TaskFailures {
  /** Failed or expired attempts of the run's tasks that are not completed. */
  failedAttempts: number;
  deadLetters: number;
}

export interface NotifyFacts extends TaskFailures {
  /** Tokens in context and the window they fill; null when nothing was measured (no hook has reported). */
  context: { tokens: number; window: number } | null;
  /** Spent and the limit (USD); null when there is no limit or nothing was measured. */
  budget: { spentUsd: number; limitUsd: number } | null;
  /** The run's latest council, when there is one. */
  council: { id: string; state: string; reasons: readonly string[] } | null;
}

/** The context % from which a context alert is critical. */
export const CONTEXT_CRITICAL_PCT = 95;
/** The budget % from which a budget alert is critical (the run pauses there). */
export const BUDGET_CRITICAL_PCT = 100;

export const DEFAULT_THRESHOLDS: NotifyThresholds = {
  contextPct: 80,
  budgetPct: 80,
  taskFailures: 3,
  councilRejection: true,
};

/** The alerts that hold for `facts`, at most one per trigger, in ALERT_TRIGGERS order. */
export function activeAlerts(facts: NotifyFacts, t: NotifyThresholds): Alert[] {
  const out: Alert[] = [];
  const context = contextAlert(facts.context, t.contextPct);
  if (context) out.push(context);
  const budget = budgetAlert(facts.budget, t.budgetPct);
  if (budget) out.push(budget);
  const tasks = taskAlert(facts.failedAttempts, facts.deadLetters, t.taskFailures);
  if (tasks) out.push(tasks);
  if (t.councilRejection && facts.council && facts.council.state === 'rejected') {
    const c = facts.council;
    out.push({
      trigger: 'council-rejected',
      key: `council-rejected:${c.id}`,
      level: 'warning',
      message: `council ${c.id} rejected completion${c.reasons[0] ? ` (${clip(c.reasons[0], 120)})` : ''}: \`loki council verdicts\` shows why; fix it, loki_verify, then convene again`,
      value: null,
      threshold: null,
    });
  }
  return out;
}

function contextAlert(c: NotifyFacts['context'], threshold: number): Alert | null {
  if (!c || c.window <= 0) return null;
  const pct = (100 * c.tokens) / c.window;
  if (pct < threshold) return null;
  const critical = pct >= CONTEXT_CRITICAL_PCT;
  const shown = Math.floor(pct);
  return {
    trigger: 'context',
    key: `context:${critical ? Math.max(threshold, CONTEXT_CRITICAL_PCT) : threshold}`,
    level: critical ? 'critical' : 'warning',
    message: `context ${shown}% full (${c.tokens} of ${c.window} tokens): record what matters with loki_memory_record before it is compacted`,
    value: round1(pct),
    threshold,
  };
}

function budgetAlert(b: NotifyFacts['budget'], threshold: number): Alert | null {
  if (!b) return null;
  // A limit of 0 is reached at once (autonomy.ts: spent >= limit).
  const pct = b.limitUsd > 0 ? (100 * b.spentUsd) / b.limitUsd : BUDGET_CRITICAL_PCT;
  if (pct < threshold) return null;
  const critical = pct >= BUDGET_CRITICAL_PCT;
  const spent = `$${b.spentUsd.toFixed(2)} of $${b.limitUsd}`;
  return {
    trigger: 'budget',
    // The limit is part of the occurrence: once a person raises it, reaching the new one is news again.
    key: `budget:${b.limitUsd}:${critical ? BUDGET_CRITICAL_PCT : threshold}`,
    level: critical ? 'critical' : 'warning',
    message: critical
      ? `budget reached (${spent}): the run pauses; raise budget.limitUsd in .loki/config.yaml, then \`loki resume\``
      : `budget ${Math.floor(pct)}% spent (${spent}): raise budget.limitUsd in .loki/config.yaml to go on past it`,
    value: round1(pct),
    threshold,
  };
}

function taskAlert(failed: number, dead: number, threshold: number): Alert | null {
  if (dead > 0)
    return {
      trigger: 'task-failures',
      key: `task-failures:dead-letter:${dead}`,
      level: 'critical',
      message: `${dead} task(s) in dead-letter: \`loki tasks --status dead-letter\` shows why; \`loki tasks retry ID\` once the cause is fixed`,
      value: dead,
      threshold: null,
    };
  if (failed < threshold) return null;
  return {
    trigger: 'task-failures',
    key: `task-failures:${threshold}`,
    level: 'warning',
    message: `${failed} failed task attempts (notify.taskFailures ${threshold}): \`loki tasks --status failed\` shows their errors`,
    value: failed,
    threshold,
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;
const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** Alerts whose key is not among `fired`: the ones to announce now. */
export function newAlerts(active: readonly Alert[], fired: Iterable<string>): Alert[] {
  const seen = new Set(fired);
  return active.filter((a) => !seen.has(a.key));
}

/**
 * True when `problem` is a notice of the hooks (domain/autonomy.ts usageNotices: `context is ...`, `budget ...`)
 * saying what an alert of the same trigger says: the compact text shows the alert alone.
 */
export function repeatsAlert(problem: string, alerts: readonly Alert[]): boolean {
  const trigger = problem.startsWith('context is ') ? 'context' : /^budget\b/.test(problem) ? 'budget' : null;
  return trigger !== null && alerts.some((a) => a.trigger === trigger);
}
