/**
 * What a checkpoint is made of:
 *   the `checkpoints` table     its record, one row (store/migrations.ts); the id is cp-<seq>
 *   .loki/checkpoints/<id>/loki.db   a copy of the database as it was (VACUUM INTO), 0600
 *   refs/loki/checkpoints/<id>  the code, as a git commit of the working tree (none outside git)
 * and two documents of the checkpoints' own: the journal of a rollback whose files are being restored, and the
 * start of the last completed-task checkpoint (the spacing between them).
 */
import * as z from 'zod/mini';
import { CHECKPOINT_KINDS, CHECKPOINT_TRIGGERS } from '../domain/checkpoints.js';
import { PHASES } from '../domain/phases.js';
import { lazyRecord } from '../store/records.js';
import { onFirstUse } from '../store/schema.js';

export const CHECKPOINTS_DIR = 'checkpoints';
export const ID_RE = /^cp-([1-9][0-9]{0,11})$/;
/** The state snapshot of a checkpoint, under `.loki/`: named like the database it copies. */
export const snapshotFile = (id: string) => `${CHECKPOINTS_DIR}/${id}/loki.db`;
export const checkpointRef = (id: string) => `refs/loki/checkpoints/${id}`;

// Built on first use (store/schema.ts onFirstUse): most starts read no checkpoint.
const schemas = onFirstUse(() => {
  const sha256 = z.string().check(z.regex(/^[0-9a-f]{64}$/));
  const gitSha = z.string().check(z.regex(/^[0-9a-f]{40,64}$/));
  const isoTime = z.string().check(z.minLength(1), z.maxLength(64));
  const count = z.int().check(z.nonnegative());
  const checkpointIdSchema = z.string().check(z.regex(ID_RE));

  /** A checkpoint's row body; its id and sequence number are the row's key. */
  const checkpointBody = z.strictObject({
    label: z.string().check(z.maxLength(200)),
    reason: z.nullable(z.string().check(z.maxLength(2000))),
    /** manual, auto or pre-rollback. */
    type: z.enum(CHECKPOINT_KINDS),
    trigger: z.enum(CHECKPOINT_TRIGGERS),
    runId: z.nullable(z.string().check(z.maxLength(64))),
    phase: z.nullable(z.enum(PHASES)),
    createdAt: isoTime,
    /** What taking it cost, wall time in ms: completed-task checkpoints are spaced by it. */
    costMs: count,
    /** For a pre-rollback checkpoint: the checkpoint the rollback went to. */
    rollbackTo: z.nullable(checkpointIdSchema),
    code: z.strictObject({
      /** null: no code snapshot (`note` says why, e.g. not a git repository). */
      commit: z.nullable(gitSha),
      tree: z.nullable(gitSha),
      head: z.nullable(gitSha),
      branch: z.nullable(z.string().check(z.maxLength(500))),
      note: z.nullable(z.string().check(z.maxLength(500))),
    }),
    /** The restored part of the snapshot: sha256 over its rows (domain stateDigestText), how many, the file's size. */
    state: z.strictObject({ digest: sha256, rows: count, bytes: count }),
  });

  const journal = z.strictObject({
    target: checkpointIdSchema,
    preRollback: checkpointIdSchema,
    /** The state part is done (it was one transaction with this journal's write): its summary, for the report. */
    state: z.strictObject({
      added: count,
      modified: count,
      removed: count,
      paths: z.array(z.string()),
      truncated: z.boolean(),
    }),
    startedAt: isoTime,
    actor: z.string().check(z.maxLength(200)),
  });

  /** A completed-task checkpoint was started at `startedAt` (ms since the epoch) by `actor`. */
  const gate = z.strictObject({ startedAt: count, actor: z.string().check(z.maxLength(200)) });
  return { checkpointBody, journal, gate };
});
type Schemas = ReturnType<typeof schemas>;

/** A checkpoint's row body (the schema); its id and sequence number are the row's key. */
export const checkpointBodySchema = () => schemas().checkpointBody;
export type CheckpointBody = z.infer<Schemas['checkpointBody']>;
export type CheckpointRecord = CheckpointBody & { id: string; seq: number };

/** The rollback journal's document key (one rollback at a time: the database's write lock orders them). */
export const JOURNAL_KEY = 'rollback';
export type RollbackJournal = z.infer<Schemas['journal']>;
export const JOURNAL_RECORD = lazyRecord<RollbackJournal>('rollback-journal', () => schemas().journal);

/** A completed-task checkpoint was started at `startedAt` (ms since the epoch) by `actor`. */
export const GATE_KEY = 'checkpoint-gate';
export type CheckpointGate = z.infer<Schemas['gate']>;
export const GATE_RECORD = lazyRecord<CheckpointGate>('checkpoint-gate', () => schemas().gate);

/** A checkpoint covers code only when it has a code snapshot. */
export const scopeOf = (r: CheckpointRecord): 'code+state' | 'state only' =>
  r.code.tree ? 'code+state' : 'state only';

/** A checkpoint in responses (tools and CLI): what a person or agent needs to choose one. */
export function checkpointRow(r: CheckpointRecord) {
  return {
    id: r.id,
    kind: r.type,
    trigger: r.trigger,
    label: r.label,
    createdAt: r.createdAt,
    phase: r.phase,
    scope: scopeOf(r),
    note: r.code.note,
  };
}
