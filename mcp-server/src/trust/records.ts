/**
 * Record types of the trust layer: the run's checklist, its council sessions, and its trust state (when
 * completion was claimed, a forced review, stagnation, the open findings). Documents (store/records.ts), by key:
 *   checklist/<run>       the checklist, held-out items marked
 *   council/<run>/<id>    one council session: seats, blind votes, the devil's advocate, the outcome
 *   trust                 claim time, stagnation, forced review, findings of the last refused completion
 *   waiver/<run>/<id>     a person's waiver of open work or of the last phase (`loki waive`), written once
 */
import * as z from 'zod/mini';
import { CHECK_LIMITS, HTTP_STATUS, type Checklist } from '../domain/checklist.js';
import { MAX_COUNCIL_SIZE, VOTES, type CastVote } from '../domain/council.js';
import { PHASES } from '../domain/phases.js';
import { WAIVER_KINDS, type WorkWaiver } from '../domain/waivers.js';
import { lazyRecord, type RecordType } from '../store/records.js';
import { onFirstUse } from '../store/schema.js';

const isoTime = z.string().check(z.minLength(1), z.maxLength(64));
const text = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
const count = z.int().check(z.nonnegative());

export const machineCheck = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('file-exists'), path: text(1, CHECK_LIMITS.path) }),
  z.strictObject({
    kind: z.literal('file-contains'),
    path: text(1, CHECK_LIMITS.path),
    text: text(1, CHECK_LIMITS.text),
  }),
  z.strictObject({ kind: z.literal('command'), check: z.enum(['test', 'build', 'lint']) }),
  z.strictObject({ kind: z.literal('tests-pass') }),
  z.strictObject({
    kind: z.literal('http'),
    url: text(1, CHECK_LIMITS.url),
    status: z.int().check(z.gte(HTTP_STATUS.min), z.lte(HTTP_STATUS.max)),
    contains: z.optional(text(0, CHECK_LIMITS.contains)),
  }),
]);

const item = z.strictObject({
  id: z.string(),
  text: z.string(),
  source: z.string(),
  origin: z.enum(['spec', 'agent']),
  check: z.nullable(machineCheck),
  checkFromSpec: z.boolean(),
  status: z.enum(['open', 'met', 'waived']),
  note: z.nullable(z.string()),
  result: z.nullable(z.strictObject({ ok: z.boolean(), detail: z.string(), at: isoTime })),
  heldOut: z.boolean(),
  updatedAt: isoTime,
  waiver: z.optional(z.string()),
});

const checklistSchema = z.strictObject({
  runId: z.string(),
  items: z.array(item),
  revealedAt: z.nullable(isoTime),
  updatedAt: isoTime,
  heldOutSet: z.optional(
    z.strictObject({
      digest: z.string(),
      count: z.int(),
      seeded: z.optional(z.boolean()),
      lost: z.optional(z.string()),
    }),
  ),
});
export const CHECKLIST_RECORD: RecordType<Checklist> = {
  kind: 'checklist',
  schema: checklistSchema,
};
export const checklistFile = (runId: string) => `checklist/${runId}`;

// The council's and the waivers' schemas are built on first use (store/schema.ts onFirstUse): a server start, and
// a hook before any council sat, read neither.
const councilSchema = onFirstUse(() => {
  const castVote = z.strictObject({
    seat: z.int().check(z.gte(0), z.lte(MAX_COUNCIL_SIZE)),
    role: z.string(),
    vote: z.enum(VOTES),
    rationale: z.string(),
    evidence: z.array(z.string()),
    items: z.array(z.strictObject({ id: z.string(), met: z.boolean(), note: z.string() })),
    codeState: z.nullable(z.string()),
    at: isoTime,
    agent: z.string(),
  });

  return z.strictObject({
    id: z.string(),
    runId: z.string(),
    convenedAt: isoTime,
    convenedBy: z.string(),
    reason: z.string(),
    size: z.int(),
    threshold: z.int(),
    /** The code fingerprint and the verification the members judge. */
    codeState: z.nullable(z.string()),
    verificationId: z.nullable(z.string()),
    /** Fingerprint of the checklist the members judged (ids, status, checks, notes). */
    checklist: z.string(),
    seats: z.array(z.strictObject({ seat: z.int(), role: z.string() })),
    votes: z.array(castVote),
    devilsAdvocate: z.nullable(castVote),
    outcome: z.enum(['voting', 'devils-advocate', 'approved', 'rejected']),
    closedAt: z.nullable(isoTime),
    reasons: z.array(z.string()),
  });
});

export type CouncilSession = z.infer<ReturnType<typeof councilSchema>> & { votes: CastVote[] };
export const COUNCIL_RECORD = lazyRecord<CouncilSession>('council', () => councilSchema());
export const councilDir = (runId: string) => `council/${runId}/`;
export const councilFile = (runId: string, id: string) => `council/${runId}/${id}`;

const trustSchema = z.strictObject({
  runId: z.string(),
  claimedAt: z.nullable(isoTime),
  forcedReview: z.nullable(z.strictObject({ reason: z.string(), at: isoTime, by: z.string() })),
  stagnation: z.strictObject({ codeState: z.nullable(z.string()), unchangedTurns: count }),
  findings: z.array(z.string()),
  findingsAt: z.nullable(isoTime),
  attempts: count,
  /** The checks and council settings the run started with (JSON): changing them mid-run blocks completion. */
  settings: z.nullable(z.string()),
});

export type TrustState = z.infer<typeof trustSchema>;
export const TRUST_RECORD: RecordType<TrustState> = { kind: 'trust', schema: trustSchema };
export const TRUST_FILE = 'trust';

export function emptyTrust(runId: string): TrustState {
  return {
    runId,
    claimedAt: null,
    forcedReview: null,
    stagnation: { codeState: null, unchangedTurns: 0 },
    findings: [],
    findingsAt: null,
    attempts: 0,
    settings: null,
  };
}

const waiverSchema = onFirstUse(() => {
  return z.strictObject({
    id: z.string().check(z.regex(/^w\d{3,}$/)),
    runId: z.string(),
    kind: z.enum(WAIVER_KINDS),
    tasks: z.array(z.string()),
    phase: z.nullable(z.enum(PHASES)),
    items: z.optional(z.array(z.string())),
    reason: z.string().check(z.minLength(1)),
    at: isoTime,
    grantedBy: z.strictObject({ kind: z.literal('person'), user: z.nullable(z.string()), via: z.string() }),
  });
});

export const WAIVER_RECORD = lazyRecord<WorkWaiver>('waiver', () => waiverSchema());
export const waiverDir = (runId: string) => `waiver/${runId}/`;
export const waiverFile = (runId: string, id: string) => `waiver/${runId}/${id}`;
