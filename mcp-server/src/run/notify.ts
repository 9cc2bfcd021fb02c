/**
 * Notification triggers: the alerts of the run (domain/notify.ts) from what the store holds, and firing them. An
 * alert fires once per key per run: its key is recorded in the `notify/<run>` document, in the same transaction
 * as its `notify.fired` audit entry, and the user's `notify.command` (if set) is started for it, detached, without
 * waiting. Nothing here may fail the call it rides on (loki_status): a command that does not start is logged.
 */
import { spawn } from 'node:child_process';
import * as z from 'zod/mini';
import { typedConfig } from '../config/load.js';
import { activeAlerts, newAlerts, type Alert, type NotifyFacts, type TaskFailures } from '../domain/notify.js';
import { log } from '../log.js';
import type { Project } from '../project.js';
import type { RecordType } from '../store/records.js';
import type { Store } from '../store/store.js';
import { latestCouncil, outcomeOf } from '../trust/council.js';
import { readHookState } from './hook-state.js';
import type { RunState } from './records.js';
import { readRun } from './state.js';

export type { Alert };

/** Fired keys kept per run; older ones are dropped (they could then fire again, which is harmless). */
const MAX_FIRED = 500;

const firedSchema = z.strictObject({
  runId: z.string(),
  fired: z.array(
    z.strictObject({
      key: z.string(),
      trigger: z.string(),
      level: z.enum(['warning', 'critical']),
      at: z.string(),
    }),
  ),
});
export type FiredAlerts = z.infer<typeof firedSchema>;
export const NOTIFY_RECORD: RecordType<FiredAlerts> = { kind: 'notify', schema: firedSchema };
export const notifyKey = (runId: string) => `notify/${runId}`;

/**
 * The alerts that hold now for the project's run (none without a run). Read-only. `failures`: the queue summary's,
 * when the caller has one (the briefing), so the tasks are not read twice.
 */
export function readAlerts(project: Project, failures?: TaskFailures): Alert[] {
  const store = project.existingStore();
  const run = readRun(store);
  if (!store || !run) return [];
  return alertsOf(project, store, run, failures);
}

/** The alerts of the run, from the effective configuration (a value config.yaml gets wrong stays at its default). */
function alertsOf(project: Project, store: Store, run: RunState, failures?: TaskFailures): Alert[] {
  const config = typedConfig(project.effectiveConfig());
  const facts = notifyFacts(project, store, run, config.budgetLimitUsd, config.contextWindowTokens, failures);
  return activeAlerts(facts, {
    contextPct: config.notify.contextPct,
    budgetPct: config.notify.budgetPct,
    taskFailures: config.notify.taskFailures,
    councilRejection: config.notify.councilRejection,
  });
}

/** What the triggers measure: the hooks' usage, the run's tasks and its latest council. */
export function notifyFacts(
  project: Project,
  store: Store,
  run: RunState,
  limitUsd: number | null,
  windowTokens: number,
  failures: TaskFailures = project.tasks().failures(run.runId),
): NotifyFacts {
  const hooks = readHookState(store, run.runId);
  const measured = hooks.toolCalls > 0;
  const council = latestCouncil(store, run.runId);
  const outcome = council ? outcomeOf(council) : null;
  return {
    context: measured ? { tokens: hooks.usage.contextTokens, window: windowTokens } : null,
    budget: measured && limitUsd !== null ? { spentUsd: hooks.usage.costUsd, limitUsd } : null,
    ...failures,
    council:
      council && outcome
        ? { id: council.id, state: outcome.state, reasons: outcome.state === 'rejected' ? outcome.reasons : [] }
        : null,
  };
}

/** The keys already fired in this run. */
export function firedKeys(store: Store | undefined, runId: string): string[] {
  return store?.records.read(notifyKey(runId), NOTIFY_RECORD)?.fired.map((f) => f.key) ?? [];
}

/**
 * The alerts that hold now; those not fired before in this run are recorded as fired (with a `notify.fired` audit
 * entry) and handed to `notify.command`. Never throws: a failure is logged and the alerts are still returned.
 */
export async function fireAlerts(project: Project, failures?: TaskFailures): Promise<Alert[]> {
  const store = project.existingStore();
  const run = readRun(store);
  if (!store || !run) return [];
  const alerts = alertsOf(project, store, run, failures);
  if (newAlerts(alerts, firedKeys(store, run.runId)).length === 0) return alerts;
  let fresh: Alert[];
  try {
    fresh = await store.mutate(
      () => {
        // Another process may have fired them since: decided again inside the transaction.
        const key = notifyKey(run.runId);
        const record = store.records.read(key, NOTIFY_RECORD);
        const todo = newAlerts(
          alerts,
          (record?.fired ?? []).map((f) => f.key),
        );
        if (todo.length === 0) return todo;
        const at = new Date().toISOString();
        const fired = [
          ...(record?.fired ?? []),
          ...todo.map((a) => ({ key: a.key, trigger: a.trigger, level: a.level, at })),
        ].slice(-MAX_FIRED);
        store.records.write(key, NOTIFY_RECORD, { runId: run.runId, fired });
        return todo;
      },
      (todo) =>
        todo.length > 0
          ? {
              action: 'notify.fired',
              target: run.runId,
              data: { alerts: todo.map((a) => ({ key: a.key, level: a.level, value: a.value })) },
            }
          : undefined,
    );
  } catch (err) {
    log.warn(`notification triggers: could not record the alerts that fired: ${(err as Error).message}`);
    return alerts;
  }
  const command = typedConfig(project.effectiveConfig()).notify.command;
  if (command && command.trim() !== '') for (const a of fresh) runCommand(project, command, a);
  return alerts;
}

/** Start the user's command for one alert, detached, output ignored; never waited for, never thrown from. */
function runCommand(project: Project, command: string, a: Alert): void {
  try {
    const child = spawn('sh', ['-c', command], {
      cwd: project.root,
      env: {
        ...withoutSecrets(project.env),
        LOKI_ALERT_TRIGGER: a.trigger,
        LOKI_ALERT_LEVEL: a.level,
        LOKI_ALERT_MESSAGE: a.message,
        LOKI_PROJECT_DIR: project.root,
      },
      detached: true,
      stdio: 'ignore',
    });
    child.on('error', (err) => log.warn(`notify.command did not start for ${a.key}: ${err.message}`));
    child.unref();
  } catch (err) {
    log.warn(`notify.command did not start for ${a.key}: ${(err as Error).message}`);
  }
}

/** What the user's command need not see: the dashboard's tokens and the TLS key. */
const SECRET_ENV = ['LOKI_DASHBOARD_TOKEN', 'LOKI_DASHBOARD_READ_TOKEN', 'LOKI_TLS_KEY'];

function withoutSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of SECRET_ENV) delete out[name];
  return out;
}
