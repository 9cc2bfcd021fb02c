/** The task record as stored: `.loki/queue/tasks/<id>.json`, validated on every read. */
import { z } from 'zod';
import { PHASES } from '../domain/phases.js';
import { PRIORITIES, TASK_STATES, type Task } from '../domain/tasks.js';
import type { RecordType } from '../store/records.js';

const isoTime = z.string().min(1).max(64);
const text = (max: number) => z.string().max(max);

const attempt = z
  .object({
    n: z.number().int().positive(),
    agent: text(200),
    token: text(64),
    claimedAt: isoTime,
    endedAt: isoTime.nullable(),
    outcome: z.enum(['completed', 'failed', 'expired', 'released']).nullable(),
    error: text(4000).nullable(),
  })
  .strict();

const taskSchema = z
  .object({
    id: text(64),
    seq: z.number().int().positive(),
    runId: text(64),
    title: text(300),
    description: text(8000),
    priority: z.enum(PRIORITIES),
    phase: z.enum(PHASES),
    dependencies: z.array(text(64)).max(100),
    acceptance: z.array(text(1000)).max(50),
    source: z.object({ kind: z.enum(['spec', 'agent', 'user']), section: text(500).nullable() }).strict(),
    status: z.enum(TASK_STATES),
    lease: z.object({ agent: text(200), token: text(64), claimedAt: isoTime, expiresAt: isoTime }).strict().nullable(),
    attempts: z.array(attempt).max(100),
    failures: z.number().int().nonnegative(),
    blockedReason: text(2000).nullable(),
    completion: z
      .object({ at: isoTime, agent: text(200), summary: text(4000), evidence: z.array(text(1000)).max(50) })
      .strict()
      .nullable(),
    deadLetteredAt: isoTime.nullable(),
    createdAt: isoTime,
    updatedAt: isoTime,
    rev: z.number().int().nonnegative(),
  })
  .strict();

export const TASK_RECORD: RecordType<Task> = { kind: 'task', version: 1, schema: taskSchema };

export const QUEUE_DIR = 'queue';
export const TASKS_DIR = `${QUEUE_DIR}/tasks`;
/** Append-only list of task ids written, so other processes refresh only what changed (see queue/cache.ts). */
export const CHANGE_FEED = `${QUEUE_DIR}/changes.log`;
export const QUEUE_LOCK = 'queue';
export const taskFile = (id: string) => `${TASKS_DIR}/${id}.json`;
