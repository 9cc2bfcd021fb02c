/** Record types of the run state: the run itself and the agent sessions. */
import { z } from 'zod';
import { PHASES, TIERS } from '../domain/phases.js';
import type { RecordType } from '../store/records.js';

const isoTime = z.string().min(1).max(64);

export const RUN_FILE = 'state/run.json';
export const sessionFile = (id: string) => `sessions/${id}.json`;
export const SESSION_STALE_MS = 5 * 60_000;

const specInfo = z
  .object({
    source: z.enum(['file', 'text']),
    path: z.string().nullable(),
    copy: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().nonnegative(),
    title: z.string().nullable(),
  })
  .strict();

const phaseChange = z
  .object({
    from: z.enum(PHASES),
    to: z.enum(PHASES),
    at: isoTime,
    direction: z.enum(['forward', 'back']),
    reason: z.string().nullable(),
  })
  .strict();

const runSchema = z
  .object({
    runId: z.string(),
    status: z.enum(['active', 'completed', 'stopped']),
    startedAt: isoTime,
    updatedAt: isoTime,
    stoppedAt: isoTime.nullable(),
    stopReason: z.string().nullable(),
    spec: specInfo.nullable(),
    tier: z.enum(TIERS),
    tierSource: z.enum(['detected', 'configured', 'argument']),
    tierReasons: z.array(z.string()),
    phase: z.enum(PHASES),
    phaseEnteredAt: isoTime,
    phaseHistory: z.array(phaseChange),
    iteration: z.number().int().nonnegative(),
    git: z
      .object({
        repository: z.boolean(),
        headSha: z.string().nullable(),
        branch: z.string().nullable(),
        baselineCommit: z.string().nullable(),
        note: z.string().nullable(),
      })
      .strict(),
  })
  .strict();

export type RunState = z.infer<typeof runSchema>;
export type SpecInfo = z.infer<typeof specInfo>;
export const RUN_RECORD: RecordType<RunState> = { kind: 'run', version: 1, schema: runSchema };

const sessionSchema = z
  .object({
    id: z.string(),
    runId: z.string(),
    pid: z.number().int(),
    host: z.string(),
    client: z.object({ name: z.string(), version: z.string() }).strict().nullable(),
    provider: z.string(),
    startedAt: isoTime,
    updatedAt: isoTime,
    status: z.enum(['running', 'stopped']),
    stoppedAt: isoTime.nullable(),
    stopReason: z.string().nullable(),
  })
  .strict();

export type SessionState = z.infer<typeof sessionSchema>;
export const SESSION_RECORD: RecordType<SessionState> = { kind: 'session', version: 1, schema: sessionSchema };

/** running, stale (no heartbeat for 5 minutes) or stopped: derived, never stored. */
export function sessionLiveness(s: SessionState, now = Date.now()): 'running' | 'stale' | 'stopped' {
  if (s.status === 'stopped') return 'stopped';
  return now - Date.parse(s.updatedAt) > SESSION_STALE_MS ? 'stale' : 'running';
}
