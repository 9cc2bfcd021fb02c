/** The task record as stored: the `body` of a row of the `tasks` table, validated on every read. */
import * as z from 'zod/mini';
import { PHASES } from '../domain/phases.js';
import { PRIORITIES, TASK_LIMITS as L, TASK_STATES, type Task } from '../domain/tasks.js';
import { DamagedRecordError } from '../errors.js';
import { DecodeMemo } from '../store/records.js';
import { damagedMessage, parseStored } from '../store/schema.js';

const isoTime = z.string().check(z.minLength(1), z.maxLength(64));
const text = (max: number) => z.string().check(z.maxLength(max));
const list = <T extends z.core.$ZodType>(item: T, max: number) => z.array(item).check(z.maxLength(max));

const attempt = z.strictObject({
  n: z.int().check(z.positive()),
  agent: text(L.agent),
  token: text(L.token),
  claimedAt: isoTime,
  endedAt: z.nullable(isoTime),
  outcome: z.nullable(z.enum(['completed', 'failed', 'expired', 'released'])),
  error: z.nullable(text(L.error)),
});

export const taskSchema = z.strictObject({
  id: text(L.id),
  seq: z.int().check(z.positive()),
  runId: text(64),
  title: text(L.title),
  description: text(L.description),
  priority: z.enum(PRIORITIES),
  phase: z.enum(PHASES),
  dependencies: list(text(L.id), L.dependencies),
  acceptance: list(text(L.acceptanceItem), L.acceptance),
  source: z.strictObject({ kind: z.enum(['spec', 'agent', 'user']), section: z.nullable(text(L.section)) }),
  status: z.enum(TASK_STATES),
  lease: z.nullable(
    z.strictObject({ agent: text(L.agent), token: text(L.token), claimedAt: isoTime, expiresAt: isoTime }),
  ),
  attempts: list(attempt, L.attempts),
  failures: z.int().check(z.nonnegative()),
  blockedReason: z.nullable(text(L.reason)),
  completion: z.nullable(
    z.strictObject({
      at: isoTime,
      agent: text(L.agent),
      summary: text(L.summary),
      evidence: list(text(L.evidenceItem), L.evidence),
    }),
  ),
  deadLetteredAt: z.nullable(isoTime),
  createdAt: isoTime,
  updatedAt: isoTime,
  rev: z.int().check(z.nonnegative()),
});

const memo = new DecodeMemo<Task>();

/**
 * A row's task (frozen, and validated once per version of the row), or DamagedRecordError naming the task when
 * its body was changed outside loki-mode.
 */
export function decodeTask(row: { id: string; body: string }): Task {
  return memo.get(row.id, row.body, () => validateTask(row));
}

function validateTask(row: { id: string; body: string }): Task {
  const r = parseStored(taskSchema, row.body, row.id);
  if ('issue' in r) throw new DamagedRecordError(damagedMessage(`task "${row.id}"`, r.issue));
  return r.value;
}
