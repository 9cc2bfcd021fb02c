/**
 * Record types of the trust layer: the run's checklist, its council sessions, and its trust state (when
 * completion was claimed, a forced review, stagnation, the open findings). One file each, schema-versioned.
 *   checklist/<run>.json         the checklist, held-out items marked
 *   council/<run>/<id>.json      one council session: seats, blind votes, the devil's advocate, the outcome
 *   state/trust.json             claim time, stagnation, forced review, findings of the last refused completion
 */
import { z } from 'zod';
import type { Checklist } from '../domain/checklist.js';
import { VOTES, type CastVote } from '../domain/council.js';
import type { RecordType } from '../store/records.js';

const isoTime = z.string().min(1).max(64);

export const machineCheck = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file-exists'), path: z.string().min(1).max(500) }).strict(),
  z.object({ kind: z.literal('file-contains'), path: z.string().min(1).max(500), text: z.string().min(1).max(2000) }).strict(),
  z.object({ kind: z.literal('command'), check: z.enum(['test', 'build', 'lint']) }).strict(),
  z.object({ kind: z.literal('tests-pass') }).strict(),
  z.object({ kind: z.literal('http'), url: z.string().min(1).max(2000), status: z.number().int().min(100).max(599), contains: z.string().max(2000).optional() }).strict(),
]);

const item = z
  .object({
    id: z.string(),
    text: z.string(),
    source: z.string(),
    origin: z.enum(['spec', 'agent']),
    check: machineCheck.nullable(),
    checkFromSpec: z.boolean(),
    status: z.enum(['open', 'met', 'waived']),
    note: z.string().nullable(),
    result: z.object({ ok: z.boolean(), detail: z.string(), at: isoTime }).strict().nullable(),
    heldOut: z.boolean(),
    updatedAt: isoTime,
  })
  .strict();

const checklistSchema = z.object({ runId: z.string(), items: z.array(item), revealedAt: isoTime.nullable(), updatedAt: isoTime }).strict();
export const CHECKLIST_RECORD: RecordType<Checklist> = { kind: 'checklist', version: 1, schema: checklistSchema as z.ZodType<Checklist> };
export const checklistFile = (runId: string) => `checklist/${runId}.json`;

const castVote = z
  .object({
    seat: z.number().int().min(0).max(9),
    role: z.string(),
    vote: z.enum(VOTES),
    rationale: z.string(),
    evidence: z.array(z.string()),
    items: z.array(z.object({ id: z.string(), met: z.boolean(), note: z.string() }).strict()),
    codeState: z.string().nullable(),
    at: isoTime,
    agent: z.string(),
  })
  .strict();

const councilSchema = z
  .object({
    id: z.string(),
    runId: z.string(),
    convenedAt: isoTime,
    convenedBy: z.string(),
    reason: z.string(),
    size: z.number().int(),
    threshold: z.number().int(),
    /** The code fingerprint and the verification the members judge. */
    codeState: z.string().nullable(),
    verificationId: z.string().nullable(),
    /** Fingerprint of the checklist the members judged (ids, status, checks, notes). */
    checklist: z.string(),
    seats: z.array(z.object({ seat: z.number().int(), role: z.string() }).strict()),
    votes: z.array(castVote),
    devilsAdvocate: castVote.nullable(),
    outcome: z.enum(['voting', 'devils-advocate', 'approved', 'rejected']),
    closedAt: isoTime.nullable(),
    reasons: z.array(z.string()),
  })
  .strict();

export type CouncilSession = z.infer<typeof councilSchema> & { votes: CastVote[] };
export const COUNCIL_RECORD: RecordType<CouncilSession> = { kind: 'council', version: 1, schema: councilSchema as z.ZodType<CouncilSession> };
export const councilDir = (runId: string) => `council/${runId}`;
export const councilFile = (runId: string, id: string) => `council/${runId}/${id}.json`;

const trustSchema = z
  .object({
    runId: z.string(),
    claimedAt: isoTime.nullable(),
    forcedReview: z.object({ reason: z.string(), at: isoTime, by: z.string() }).strict().nullable(),
    stagnation: z.object({ codeState: z.string().nullable(), unchangedTurns: z.number().int().nonnegative() }).strict(),
    findings: z.array(z.string()),
    findingsAt: isoTime.nullable(),
    attempts: z.number().int().nonnegative(),
    /** The checks and council settings the run started with (JSON): changing them mid-run blocks completion. */
    settings: z.string().nullable(),
  })
  .strict();

export type TrustState = z.infer<typeof trustSchema>;
export const TRUST_RECORD: RecordType<TrustState> = { kind: 'trust', version: 1, schema: trustSchema };
export const TRUST_FILE = 'state/trust.json';

export function emptyTrust(runId: string): TrustState {
  return { runId, claimedAt: null, forcedReview: null, stagnation: { codeState: null, unchangedTurns: 0 }, findings: [], findingsAt: null, attempts: 0, settings: null };
}
