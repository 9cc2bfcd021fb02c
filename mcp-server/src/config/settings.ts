/**
 * Every project setting, as data: its key in `.loki/config.yaml`, its `LOKI_*` environment override, its
 * default and how to parse and check it. `loki config` and references/ are generated from this table.
 */
import { MAX_COUNCIL_SIZE } from '../domain/council.js';

export type SettingValue = string | number | boolean | string[] | null;

export interface Setting {
  /** Dotted key: `council.size` is `council: { size: ... }` in config.yaml. */
  key: string;
  env?: string;
  description: string;
  default: SettingValue;
  type: 'boolean' | 'integer' | 'number' | 'string' | 'list' | 'enum';
  min?: number;
  max?: number;
  /** For `enum`. */
  values?: readonly string[];
  /** May be null (unset). */
  nullable?: boolean;
}

export const COMPLEXITY_CHOICES = ['auto', 'simple', 'standard', 'complex'] as const;

export const SETTINGS: readonly Setting[] = [
  {
    key: 'run.complexity',
    env: 'LOKI_COMPLEXITY',
    type: 'enum',
    values: COMPLEXITY_CHOICES,
    default: 'auto',
    description: 'Complexity tier (decides the phase list); auto detects it from the spec and the repository',
  },
  {
    key: 'limits.maxIterations',
    env: 'LOKI_MAX_ITERATIONS',
    type: 'integer',
    min: 1,
    max: 1_000_000,
    default: 1000,
    description: 'Turns before the run stops on its own',
  },
  {
    key: 'limits.maxRetries',
    env: 'LOKI_MAX_RETRIES',
    type: 'integer',
    min: 1,
    max: 100,
    default: 5,
    description: 'Failed attempts before a task moves to dead-letter',
  },
  {
    key: 'tasks.leaseMinutes',
    env: 'LOKI_LEASE_MINUTES',
    type: 'number',
    min: 0.01,
    max: 24 * 60,
    default: 30,
    description: 'How long a claimed task stays reserved for its agent',
  },
  {
    key: 'budget.limitUsd',
    env: 'LOKI_BUDGET_LIMIT',
    type: 'number',
    min: 0,
    max: 1_000_000,
    default: null,
    nullable: true,
    description: 'Spend (USD, measured from host transcripts) at which the run pauses; unset means no limit',
  },
  {
    key: 'context.windowTokens',
    env: 'LOKI_CONTEXT_WINDOW',
    type: 'integer',
    min: 1000,
    max: 10_000_000,
    default: 200_000,
    description: "The host model's context window in tokens: the context % of notify.contextPct is measured against it",
  },
  {
    key: 'notify.contextPct',
    env: 'LOKI_NOTIFY_CONTEXT_PCT',
    type: 'number',
    min: 1,
    max: 100,
    default: 80,
    description: 'Alert when the context is this % full (critical from 95 %)',
  },
  {
    key: 'notify.budgetPct',
    env: 'LOKI_NOTIFY_BUDGET_PCT',
    type: 'number',
    min: 1,
    max: 100,
    default: 80,
    description: 'Alert when this % of budget.limitUsd is spent (critical at 100 %); no alert without a limit',
  },
  {
    key: 'notify.taskFailures',
    env: 'LOKI_NOTIFY_TASK_FAILURES',
    type: 'integer',
    min: 1,
    max: 100_000,
    default: 3,
    description:
      "Alert when the run's unfinished tasks have failed this many attempts in all; any dead-letter alerts too",
  },
  {
    key: 'notify.councilRejection',
    env: 'LOKI_NOTIFY_COUNCIL_REJECTION',
    type: 'boolean',
    default: true,
    description: 'Alert when the completion council rejects',
  },
  {
    key: 'notify.command',
    env: 'LOKI_NOTIFY_COMMAND',
    type: 'string',
    default: null,
    nullable: true,
    description:
      'Shell command run (detached, once per alert) when an alert fires, with LOKI_ALERT_TRIGGER, LOKI_ALERT_LEVEL, LOKI_ALERT_MESSAGE and LOKI_PROJECT_DIR set',
  },
  {
    key: 'council.enabled',
    env: 'LOKI_COUNCIL_ENABLED',
    type: 'boolean',
    default: true,
    description: 'Require a completion council vote before completion',
  },
  {
    key: 'council.size',
    env: 'LOKI_COUNCIL_SIZE',
    type: 'integer',
    min: 3,
    max: MAX_COUNCIL_SIZE,
    default: 3,
    description: 'Council members',
  },
  {
    key: 'council.threshold',
    env: 'LOKI_COUNCIL_THRESHOLD',
    type: 'integer',
    min: 1,
    max: MAX_COUNCIL_SIZE,
    default: 2,
    description: 'Approvals needed; may only be raised (at least two thirds of the council, at most its size)',
  },
  {
    key: 'council.checkInterval',
    env: 'LOKI_COUNCIL_CHECK_INTERVAL',
    type: 'integer',
    min: 1,
    max: 1000,
    default: 5,
    description: 'Iterations between council checks',
  },
  {
    key: 'council.minIterations',
    env: 'LOKI_COUNCIL_MIN_ITERATIONS',
    type: 'integer',
    min: 0,
    max: 1000,
    default: 3,
    description:
      'Iterations before loki_status shows the periodic council check as due (convening itself needs real progress, not turns)',
  },
  {
    key: 'council.stagnationLimit',
    env: 'LOKI_COUNCIL_STAGNATION_LIMIT',
    type: 'integer',
    min: 1,
    max: 1000,
    default: 5,
    description: 'Iterations without a code change before a forced review',
  },
  {
    key: 'checks.test',
    type: 'string',
    default: null,
    nullable: true,
    description: 'Command that runs the tests (detected from the project when unset)',
  },
  {
    key: 'checks.build',
    type: 'string',
    default: null,
    nullable: true,
    description: 'Command that builds the project (detected when unset)',
  },
  {
    key: 'checks.lint',
    type: 'string',
    default: null,
    nullable: true,
    description: 'Command that lints the project (detected when unset)',
  },
  {
    key: 'checks.timeoutSeconds',
    type: 'integer',
    min: 1,
    max: 24 * 3600,
    default: 600,
    description: 'Time limit for each check command',
  },
  {
    key: 'checkpoints.retention',
    env: 'LOKI_CHECKPOINT_RETENTION',
    type: 'integer',
    min: 1,
    max: 10_000,
    default: 50,
    description: 'Automatic checkpoints kept, and separately pre-rollback ones (manual ones are never pruned)',
  },
  {
    key: 'checkpoints.onTask',
    env: 'LOKI_CHECKPOINT_ON_TASK',
    type: 'boolean',
    default: true,
    description:
      'Take an automatic checkpoint after each completed task (skipped when nothing changed since the last one)',
  },
  {
    key: 'checkpoints.taskSpacingSeconds',
    env: 'LOKI_CHECKPOINT_TASK_SPACING',
    type: 'number',
    min: 0,
    max: 3600,
    default: 1,
    description:
      'Completed-task checkpoints closer together than this (any process), or than ten times what the last one took, are coalesced into the next one; 0 takes one after every task',
  },
  {
    key: 'guard.allowedPaths',
    env: 'LOKI_ALLOWED_PATHS',
    type: 'list',
    default: [],
    description:
      'Paths (relative to the project) that file-writing tools and the shell writes the guard can see may change; empty allows the whole project',
  },
  {
    key: 'guard.blockedCommands',
    env: 'LOKI_BLOCKED_COMMANDS',
    type: 'list',
    default: [],
    description: 'Shell commands refused by the guard hook (each part of a compound command is checked)',
  },
  {
    key: 'guard.stagedAutonomy',
    env: 'LOKI_STAGED_AUTONOMY',
    type: 'boolean',
    default: false,
    description: 'Ask the user before file writes and shell commands',
  },
  {
    key: 'signals.promptInjection',
    env: 'LOKI_PROMPT_INJECTION',
    type: 'boolean',
    default: false,
    description: 'Deliver .loki/HUMAN_INPUT.md directives to the agent',
  },
  {
    key: 'signals.humanInputMaxBytes',
    type: 'integer',
    min: 1,
    max: 1024 * 1024,
    default: 64 * 1024,
    description: 'Largest HUMAN_INPUT.md accepted',
  },
];

export const SETTINGS_BY_KEY: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((s) => [s.key, s]));
