/** Record types of the run state: the run itself and the agent sessions. */
import * as z from 'zod/mini';
import { PHASES, TIERS } from '../domain/phases.js';
import type { RecordType } from '../store/records.js';

const isoTime = z.string().check(z.minLength(1), z.maxLength(64));
const count = z.int().check(z.nonnegative());

/** Document keys (store/records.ts). */
export const RUN_FILE = 'run';
/** Runs replaced by a restart, kept whole. */
export const archivedRunKey = (runId: string) => `run/${runId}`;
export const SESSION_PREFIX = 'session/';
export const sessionFile = (id: string) => `${SESSION_PREFIX}${id}`;
export const SESSION_STALE_MS = 5 * 60_000;

const specInfo = z.strictObject({
  source: z.enum(['file', 'text']),
  path: z.nullable(z.string()),
  copy: z.string(),
  sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  bytes: count,
  title: z.nullable(z.string()),
});

const phaseChange = z.strictObject({
  from: z.enum(PHASES),
  to: z.enum(PHASES),
  at: isoTime,
  direction: z.enum(['forward', 'back']),
  reason: z.nullable(z.string()),
});

const runSchema = z.strictObject({
  runId: z.string(),
  status: z.enum(['active', 'completed', 'stopped']),
  startedAt: isoTime,
  updatedAt: isoTime,
  stoppedAt: z.nullable(isoTime),
  stopReason: z.nullable(z.string()),
  spec: z.nullable(specInfo),
  tier: z.enum(TIERS),
  tierSource: z.enum(['detected', 'configured', 'argument']),
  tierReasons: z.array(z.string()),
  phase: z.enum(PHASES),
  phaseEnteredAt: isoTime,
  phaseHistory: z.array(phaseChange),
  iteration: count,
  git: z.strictObject({
    repository: z.boolean(),
    headSha: z.nullable(z.string()),
    branch: z.nullable(z.string()),
    baselineCommit: z.nullable(z.string()),
    note: z.nullable(z.string()),
  }),
});

export type RunState = z.infer<typeof runSchema>;
export type SpecInfo = z.infer<typeof specInfo>;
export const RUN_RECORD: RecordType<RunState> = { kind: 'run', schema: runSchema };

const sessionSchema = z.strictObject({
  id: z.string(),
  runId: z.string(),
  pid: z.int(),
  host: z.string(),
  client: z.nullable(z.strictObject({ name: z.string(), version: z.string() })),
  provider: z.string(),
  startedAt: isoTime,
  updatedAt: isoTime,
  status: z.enum(['running', 'stopped']),
  stoppedAt: z.nullable(isoTime),
  stopReason: z.nullable(z.string()),
});

export type SessionState = z.infer<typeof sessionSchema>;
export const SESSION_RECORD: RecordType<SessionState> = { kind: 'session', schema: sessionSchema };

/** running, stale (no heartbeat for 5 minutes) or stopped: derived, never stored. */
export function sessionLiveness(s: SessionState, now = Date.now()): 'running' | 'stale' | 'stopped' {
  if (s.status === 'stopped') return 'stopped';
  return now - Date.parse(s.updatedAt) > SESSION_STALE_MS ? 'stale' : 'running';
}
