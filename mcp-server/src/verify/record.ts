/**
 * The verification record: the facts one `loki_verify` gathered, plain JSON, written once to
 * `.loki/verify/<runId>/<id>.json` (ids v0001, v0002, ... in order) and never changed afterwards.
 */
import { z } from 'zod';
import { CHECK_NAMES } from '../domain/checks.js';
import type { RecordType } from '../store/records.js';

const counts = z
  .object({
    runner: z.enum(['vitest', 'jest', 'node:test', 'mocha', 'pytest', 'cargo', 'go', 'generic']),
    passed: z.number().int().nonnegative(),
    failed: z.number().int().nonnegative(),
    skipped: z.number().int().nonnegative(),
    total: z.number().int().nonnegative(),
  })
  .strict();

const check = z
  .object({
    name: z.enum(CHECK_NAMES),
    /** pass | fail; for tests also inconclusive (zero tests, counts unknown); absent: no command; not-run: left out by `only`. */
    verdict: z.enum(['pass', 'fail', 'inconclusive', 'unknown', 'absent', 'not-run']),
    /** Why, in words. */
    reason: z.string(),
    command: z.string().nullable(),
    source: z.enum(['config', 'detected']).nullable(),
    /** The setting or file the command came from. */
    from: z.string(),
    exitCode: z.number().int().nullable(),
    signal: z.string().nullable(),
    timedOut: z.boolean(),
    durationMs: z.number().int().nonnegative().nullable(),
    /** Test counts read from the output (tests only; null when unknown or not a test check). */
    tests: counts.nullable(),
    /** The last ~4 KB of stdout+stderr, secrets replaced by [REDACTED:<kind>]. */
    outputTail: z.string(),
    outputBytes: z.number().int().nonnegative(),
  })
  .strict();

const changedFile = z
  .object({
    path: z.string(),
    status: z.enum(['A', 'M', 'D', 'R']),
    from: z.string().nullable(),
    insertions: z.number().int().nonnegative().nullable(),
    deletions: z.number().int().nonnegative().nullable(),
  })
  .strict();

const verificationSchema = z
  .object({
    id: z.string().regex(/^v\d{4,}$/),
    runId: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    /** The checks asked for (all three unless `only` narrowed them). */
    only: z.array(z.enum(CHECK_NAMES)),
    /**
     * Fingerprint of the working tree after the checks ran (git tree id of a snapshot excluding .loki/); compare
     * with currentCodeState() to tell whether the code changed since. null without git.
     */
    codeState: z.string().nullable(),
    /** The same fingerprint before the checks ran; differs when the checks themselves changed files. */
    codeStateBefore: z.string().nullable(),
    git: z
      .object({
        repository: z.boolean(),
        baselineCommit: z.string().nullable(),
        /** HEAD when the verification ran (null: no commits, or not a repository). */
        headSha: z.string().nullable(),
      })
      .strict(),
    checks: z.array(check),
    diff: z
      .object({
        /** False when the diff could not be computed (see note). */
        available: z.boolean(),
        filesChanged: z.number().int().nonnegative(),
        insertions: z.number().int().nonnegative(),
        deletions: z.number().int().nonnegative(),
        /** Up to 500 files; `filesOmitted` counts the rest. */
        files: z.array(changedFile),
        filesOmitted: z.number().int().nonnegative(),
      })
      .strict(),
    testFiles: z
      .object({
        available: z.boolean(),
        /** Test files present in the baseline tree and absent now (renames are not deletions). */
        deleted: z.array(z.string()),
        newlySkipped: z.array(
          z.object({ file: z.string(), markers: z.array(z.object({ marker: z.string(), before: z.number().int(), now: z.number().int() }).strict()) }).strict(),
        ),
      })
      .strict(),
    secrets: z
      .object({
        available: z.boolean(),
        /** Added or modified files whose current content was scanned. */
        scannedFiles: z.number().int().nonnegative(),
        /** File, line and kind of each secret; never the value. */
        findings: z.array(z.object({ file: z.string(), line: z.number().int().positive(), kind: z.string() }).strict()),
        /** Secret-like strings in changed files that were already there at the baseline (not introduced by the run). */
        preexisting: z.number().int().nonnegative(),
        /** Files not scanned and why (binary, too large, unreadable). */
        skipped: z.array(z.object({ file: z.string(), reason: z.string() }).strict()),
      })
      .strict(),
    /** What the server could not know, in plain words. */
    notes: z.array(z.string()),
  })
  .strict();

export type VerificationRecord = z.infer<typeof verificationSchema>;
export type CheckFact = VerificationRecord['checks'][number];
export type CheckVerdict = CheckFact['verdict'];

export const VERIFICATION_RECORD: RecordType<VerificationRecord> = { kind: 'verification', version: 1, schema: verificationSchema };

export const verifyDir = (runId: string) => `verify/${runId}`;
export const verificationFile = (runId: string, id: string) => `${verifyDir(runId)}/${id}.json`;
export const verificationId = (n: number) => `v${String(n).padStart(4, '0')}`;
export const VERIFICATION_ID = /^v(\d{4,})\.json$/;
