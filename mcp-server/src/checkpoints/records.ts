/**
 * Checkpoint records as stored under `.loki/checkpoints/`:
 *   <id>/checkpoint.json   the record (what, when, why, code snapshot, state digest); written last
 *   <id>/state.json        the state manifest: every captured `.loki/` file with its sha256 and size
 *   objects/packs/<sha256>.pack  the captured state files' contents, many to a file (see packs.ts)
 *   objects/<aa>/<sha256>  contents stored one to a file, by checkpoints taken before packs (still read)
 *   rollback.json          the journal of a rollback in progress (removed when it is complete)
 * The code itself lives in git under refs/loki/checkpoints/<id>.
 */
import { z } from 'zod';
import { CHECKPOINT_KINDS, CHECKPOINT_TRIGGERS } from '../domain/checkpoints.js';
import { PHASES } from '../domain/phases.js';
import type { RecordType } from '../store/records.js';

export const CHECKPOINTS_DIR = 'checkpoints';
export const CHECKPOINT_LOCK = 'checkpoints';
export const JOURNAL_FILE = `${CHECKPOINTS_DIR}/rollback.json`;
export const ID_RE = /^cp-([1-9][0-9]{0,11})$/;
export const recordFile = (id: string) => `${CHECKPOINTS_DIR}/${id}/checkpoint.json`;
export const manifestFile = (id: string) => `${CHECKPOINTS_DIR}/${id}/state.json`;
export const blobFile = (sha: string) => `${CHECKPOINTS_DIR}/objects/${sha.slice(0, 2)}/${sha.slice(2)}`;
export const checkpointRef = (id: string) => `refs/loki/checkpoints/${id}`;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const gitSha = z.string().regex(/^[0-9a-f]{40,64}$/);
const isoTime = z.string().min(1).max(64);

const checkpointSchema = z
  .object({
    id: z.string().regex(ID_RE),
    seq: z.number().int().positive(),
    label: z.string().max(200),
    reason: z.string().max(2000).nullable(),
    /** manual, auto or pre-rollback ("kind" is taken by the record envelope). */
    type: z.enum(CHECKPOINT_KINDS),
    trigger: z.enum(CHECKPOINT_TRIGGERS),
    runId: z.string().max(64).nullable(),
    phase: z.enum(PHASES).nullable(),
    createdAt: isoTime,
    /** For a pre-rollback checkpoint: the checkpoint the rollback went to. */
    rollbackTo: z.string().regex(ID_RE).nullable(),
    code: z
      .object({
        /** null: no code snapshot (`note` says why, e.g. not a git repository). */
        commit: gitSha.nullable(),
        tree: gitSha.nullable(),
        head: gitSha.nullable(),
        branch: z.string().max(500).nullable(),
        note: z.string().max(500).nullable(),
      })
      .strict(),
    state: z.object({ digest: sha256, files: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }).strict(),
  })
  .strict();

export type CheckpointRecord = z.infer<typeof checkpointSchema>;
export const CHECKPOINT_RECORD: RecordType<CheckpointRecord> = { kind: 'checkpoint', version: 1, schema: checkpointSchema };

const manifestSchema = z
  .object({
    files: z
      .array(
        z
          .object({
            path: z.string().min(1).max(4096),
            sha256,
            size: z.number().int().nonnegative(),
            /** Where the content is: a pack and the offset in it; without them, a loose copy (objects/<aa>/<rest>). */
            pack: sha256.optional(),
            offset: z.number().int().nonnegative().optional(),
            /** The file's identity when it was hashed: a later scan reuses the hash only for the same identity. */
            ino: z.number().nonnegative().optional(),
            mtimeMs: z.number().optional(),
            ctimeMs: z.number().optional(),
          })
          .strict(),
      )
      .max(1_000_000),
    /** When the scan began (ms since the epoch): a later scan trusts these hashes for files not changed since. */
    scannedAt: z.number().int().nonnegative().optional(),
  })
  .strict();

export type StateManifest = z.infer<typeof manifestSchema>;
/** A manifest entry: a captured file and where its content is stored. */
export type StoredEntry = StateManifest['files'][number];
export const MANIFEST_RECORD: RecordType<StateManifest> = { kind: 'checkpoint-state', version: 1, schema: manifestSchema };

const journalSchema = z
  .object({
    target: z.string().regex(ID_RE),
    preRollback: z.string().regex(ID_RE),
    code: z.boolean(),
    startedAt: isoTime,
    actor: z.string().max(200),
  })
  .strict();

export type RollbackJournal = z.infer<typeof journalSchema>;
export const JOURNAL_RECORD: RecordType<RollbackJournal> = { kind: 'rollback-journal', version: 1, schema: journalSchema };

/** A checkpoint covers code only when it has a code snapshot. */
export const scopeOf = (r: CheckpointRecord): 'code+state' | 'state only' => (r.code.tree ? 'code+state' : 'state only');
