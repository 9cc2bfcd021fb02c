/** The JSON the dashboard's API answers with (mcp-server/src/dashboard/views.ts), as far as the page reads it. */

export type Phase = string;
export type TaskState = 'pending' | 'in-progress' | 'completed' | 'failed' | 'blocked' | 'dead-letter';
export const TASK_STATES: readonly TaskState[] = [
  'pending',
  'in-progress',
  'completed',
  'failed',
  'blocked',
  'dead-letter',
];

export interface Alert {
  trigger: string;
  key: string;
  level: 'warning' | 'critical';
  message: string;
  value: number | null;
  threshold: number | null;
}

export interface Status {
  project: string;
  /** The token's scope, when the server says (a read-only token sees the controls disabled up front). */
  scope?: 'read' | 'operator';
  run: {
    runId: string;
    status: string;
    phase: Phase;
    phases: Phase[];
    nextPhase: Phase | null;
    tier: string;
    iteration: number;
    maxIterations: number;
    startedAt: string;
    spec: { path: string | null; title: string | null; copy: string | null } | null;
    baseline: string | null;
  } | null;
  signals: { pause: boolean; stop: boolean; humanInput: { status: string; reason?: string } };
  budget: { limitUsd: number | null; spentUsd: number | null; note: string };
  queue: {
    counts: Record<TaskState, number>;
    total: number;
    inProgress: number;
    next: { id: string; title: string } | null;
    openInPhase: number;
    laterPhases: number;
    waiting: number;
  } | null;
  trust: {
    checklist: { total: number; met: number; open: number; waived: number; failing: number; withChecks: number };
    verification: { id: string; at: string; tests: string; blocking: number } | null;
    council: { id: string; state: string; cast: number; size: number } | null;
    findings: string[];
    forcedReview: string | null;
    councilDue: boolean;
    unchangedTurns: number;
    stagnated: boolean;
  } | null;
  alerts: Alert[];
  problems: string[];
  next: string;
  sessions: { id: string; provider: string; pid: number | null; updatedAt: string; liveness: string }[];
}

export interface Attempt {
  n: number;
  agent: string;
  claimedAt: string;
  endedAt: string | null;
  outcome: string | null;
  error: string | null;
}

export interface Task {
  id: string;
  title: string;
  status: TaskState;
  priority: string;
  phase: Phase;
  lease: { agent: string; claimedAt: string; expiresAt: string } | null;
  attempts: Attempt[];
  failures: number;
  blockedReason: string | null;
  deadLetteredAt: string | null;
  dependencies: string[];
}

export interface Tasks {
  runId: string | null;
  counts: Record<TaskState, number> | null;
  tasks: Task[];
}

export interface Check {
  name: string;
  verdict: string;
  reason: string | null;
  command: string | null;
  exitCode: number | null;
  durationMs: number | null;
  tests: { runner: string; passed: number; failed: number; skipped: number; total: number } | null;
  counted: string | null;
}

export interface Verification {
  id: string;
  startedAt: string;
  finishedAt: string | null;
  codeState: string | null;
  cleanRoom: boolean;
  checks: Check[];
  diff: { filesChanged: number; insertions: number; deletions: number };
  testsGone: unknown;
  secrets: number;
  findings: { blocking: string[]; gaps: string[]; toJudge: string[] };
  notes: string[];
}

export interface Verifications {
  runId: string | null;
  verifications: Verification[];
}

export interface ChecklistItem {
  id: string;
  text: string;
  source: string | null;
  origin: string;
  check: ({ kind: string } & Record<string, unknown>) | null;
  status: 'open' | 'met' | 'waived';
  note: string | null;
  result: { ok: boolean; detail: string; at: string } | null;
  heldOut: boolean;
}

export interface Waiver {
  id: string;
  kind: string;
  tasks: string[];
  phase: string | null;
  items?: string[];
  reason: string;
  at: string;
  grantedBy: { kind: string; user: string | null; via: string };
}

export interface ChecklistPage {
  runId: string | null;
  status?: string;
  checklist: {
    items: ChecklistItem[];
    counts: { total: number; met: number; open: number; waived: number; failing: number; withChecks: number };
    revealed: boolean;
  } | null;
  waivers: Waiver[];
}

export interface Vote {
  seat: number;
  role: string;
  vote: string;
  rationale: string;
  evidence: string[];
  at: string;
}

export interface Council {
  id: string;
  state: string;
  hidden: boolean;
  cast: number;
  size: number;
  threshold: number;
  convenedAt: string;
  reason: string;
  votes: Vote[];
}

export interface CouncilPage {
  runId: string | null;
  enabled: boolean;
  size: number;
  threshold: number;
  forcedReview: { reason: string; at: string; by: string } | null;
  findings: string[];
  councils: Council[];
}

export interface ContextPage {
  runId: string | null;
  measured: boolean;
  note: string;
  windowTokens: number;
  contextTokens: number;
  contextPct: number | null;
  costUsd: number;
  limitUsd: number | null;
  budgetPct: number | null;
  tokens: { input: number; output: number; cacheWrite: number; cacheRead: number };
  toolCalls: number;
  timeline: { at: string; contextTokens: number; costUsd: number }[];
}

export interface MemoryResult {
  id: string;
  layer: string;
  title: string;
  score: number;
  outcome?: string;
  flags: string[];
  provenance: { run: string | null; task: string | null; at: string; source: string } | null;
}

export interface MemoryPage {
  notice?: string;
  query: string | null;
  results: MemoryResult[];
  matched: number;
  problems: string[];
}

export interface Checkpoint {
  id: string;
  kind: string;
  trigger: string;
  label: string | null;
  createdAt: string;
  phase: string | null;
  scope: string;
  note: string | null;
}

export interface CheckpointsPage {
  latest: string | null;
  checkpoints: Checkpoint[];
  damaged: { id: string; problem: string }[];
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  data: unknown;
}

export interface AuditPage {
  head: number;
  count: number;
  entries: AuditEntry[];
}

export interface AuditVerify {
  ok: boolean;
  count: number;
  head: string;
  firstBreak: unknown;
  anchors: { label: string; count: number; status: string }[];
}

export interface ReceiptsPage {
  receipts: { runId: string; headline: string }[];
}

export interface ReceiptPage {
  runId: string;
  receipt: string | null;
}

/** GET /api/receipts/:run/check: `loki proof verify` of one receipt. */
export interface ReceiptCheck {
  runId: string;
  ok: boolean;
  headline: string | null;
  manifestSha256?: string;
  problems: string[];
  notes: string[];
}

// The server's own definition: one source of truth for what the event stream carries.
import type { ProgressEvent } from '../src/run/progress-events.js';
export type { ProgressEvent };

export interface Change {
  stamp: string;
  head: number;
  events: ProgressEvent[];
}
