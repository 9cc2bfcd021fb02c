/**
 * The verification record: the facts one `loki_verify` gathered, plain JSON, written once to
 * the document `verify/<runId>/<id>` (ids v0001, v0002, ... in order), created once and never changed afterwards.
 */
import * as z from 'zod/mini';
import { CHECK_NAMES } from '../domain/checks.js';
import { lazyRecord } from '../store/records.js';
import { onFirstUse } from '../store/schema.js';

// Built on first use (store/schema.ts onFirstUse): a hook or a server start that reads no verification does not
// pay for these 160 schema nodes.
const schemas = onFirstUse(() => {
  const count = z.int().check(z.nonnegative());

  const counts = z.strictObject({
    runner: z.enum(['vitest', 'jest', 'node:test', 'mocha', 'pytest', 'cargo', 'go', 'generic']),
    passed: count,
    failed: count,
    skipped: count,
    total: count,
  });

  const check = z.strictObject({
    name: z.enum(CHECK_NAMES),
    /** pass | fail; for tests also inconclusive (zero tests, counts unknown); absent: no command; not-run: left out by `only`. */
    verdict: z.enum(['pass', 'fail', 'inconclusive', 'unknown', 'absent', 'not-run']),
    /** Why, in words. */
    reason: z.string(),
    command: z.nullable(z.string()),
    source: z.nullable(z.enum(['config', 'detected'])),
    /** The setting or file the command came from. */
    from: z.string(),
    exitCode: z.nullable(z.int()),
    signal: z.nullable(z.string()),
    timedOut: z.boolean(),
    durationMs: z.nullable(count),
    /** Test counts read from the output (tests only; null when unknown or not a test check). */
    tests: z.nullable(counts),
    /** The last ~4 KB of stdout+stderr, secrets replaced by [REDACTED:<kind>]. */
    outputTail: z.string(),
    outputBytes: count,
    /**
     * How the test counts were obtained (tests only; absent in records of 0.2): from the report the runner wrote
     * to a file the server named (domain/test-runners.ts), or from the output when the runner was not identified.
     */
    runner: z.optional(
      z.nullable(
        z.strictObject({
          /** The runner identified, or null. */
          name: z.nullable(z.string()),
          /** The command that really ran (secrets scrubbed; the report file shown as <report>). */
          ran: z.string(),
          /** The configured command with script bodies resolved: "npm test -> vitest run". */
          resolved: z.string(),
          counted: z.enum(['report', 'output']),
          /** Why the runner could not be identified (counted from output). */
          unverified: z.nullable(z.string()),
          /** Why the report could not be read (a planned run whose report is missing or damaged). */
          reportError: z.nullable(z.string()),
        }),
      ),
    ),
  });

  /** The tests that ran at the run's baseline, run once on a clean room of the baseline snapshot (verify/baseline.ts). */
  const baselineTests = z.strictObject({
    runId: z.string(),
    /** The baseline tree the tests ran on. */
    tree: z.string(),
    at: z.string(),
    /** False when there is nothing to compare with: no test command, runner not identified, no report. */
    available: z.boolean(),
    /** Why not, in words. */
    why: z.nullable(z.string()),
    runner: z.nullable(z.string()),
    resolved: z.nullable(z.string()),
    /** Ids of the tests that ran (passed or failed) at the baseline. */
    ran: z.array(z.string()),
    skipped: count,
  });

  const changedFile = z.strictObject({
    path: z.string(),
    status: z.enum(['A', 'M', 'D', 'R']),
    from: z.nullable(z.string()),
    insertions: z.nullable(count),
    deletions: z.nullable(count),
  });

  const verification = z.strictObject({
    id: z.string().check(z.regex(/^v\d{4,}$/)),
    runId: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    /** The checks asked for (all three unless `only` narrowed them). */
    only: z.array(z.enum(CHECK_NAMES)),
    /**
     * Fingerprint of the working tree after the checks ran (git tree id of a snapshot excluding .loki/); compare
     * with currentCodeState() to tell whether the code changed since. null without git.
     */
    codeState: z.nullable(z.string()),
    /** The same fingerprint before the checks ran; differs when the checks themselves changed files. */
    codeStateBefore: z.nullable(z.string()),
    /**
     * The checks ran on a private copy of the snapshot (verify/room.ts), with these dependency folders linked from
     * the project; null: they ran in the project folder (no git, or no snapshot). Absent in records of 0.2.
     */
    cleanRoom: z.optional(z.nullable(z.strictObject({ linked: z.array(z.string()) }))),
    git: z.strictObject({
      repository: z.boolean(),
      baselineCommit: z.nullable(z.string()),
      /** HEAD when the verification ran (null: no commits, or not a repository). */
      headSha: z.nullable(z.string()),
    }),
    checks: z.array(check),
    diff: z.strictObject({
      /** False when the diff could not be computed (see note). */
      available: z.boolean(),
      filesChanged: count,
      insertions: count,
      deletions: count,
      /** Up to 500 files; `filesOmitted` counts the rest. */
      files: z.array(changedFile),
      filesOmitted: count,
    }),
    testFiles: z.strictObject({
      available: z.boolean(),
      /** Test files present in the baseline tree and absent now (renames are not deletions). */
      deleted: z.array(z.string()),
      newlySkipped: z.array(
        z.strictObject({
          file: z.string(),
          markers: z.array(z.strictObject({ marker: z.string(), before: z.int(), now: z.int() })),
        }),
      ),
      /** Test files of the baseline holding fewer assertions now (domain/test-files.ts). Absent in 0.2. */
      fewerAssertions: z.optional(z.array(z.strictObject({ file: z.string(), before: count, now: count }))),
    }),
    secrets: z.strictObject({
      available: z.boolean(),
      /** Added or modified files whose current content was scanned. */
      scannedFiles: count,
      /** File, line and kind of each secret; never the value. */
      findings: z.array(z.strictObject({ file: z.string(), line: z.int().check(z.positive()), kind: z.string() })),
      /**
       * Findings the agent allowed with a `loki-allow-secret: <reason>` comment on the line or the line above: they
       * do not block, and the receipt lists them (a gap). Absent in records written before allow markers existed.
       */
      allowed: z.optional(
        z.array(
          z.strictObject({
            file: z.string(),
            line: z.int().check(z.positive()),
            kind: z.string(),
            reason: z.string(),
          }),
        ),
      ),
      /** Secret-like strings in changed files that were already there at the baseline (not introduced by the run). */
      preexisting: count,
      /** Files not scanned and why (too large, unreadable, not a regular file, over the file limit). */
      skipped: z.array(z.strictObject({ file: z.string(), reason: z.string() })),
    }),
    /**
     * Test scripts, runner configurations, conftest and CI files changed since the baseline (domain/harness.ts),
     * and whether the baseline had test files. null: git could not tell. Absent in records of 0.2.
     */
    harness: z.optional(
      z.nullable(
        z.strictObject({
          changes: z.array(z.strictObject({ path: z.string(), status: z.enum(['A', 'M', 'D']), what: z.string() })),
          baselineHadTests: z.boolean(),
        }),
      ),
    ),
    /**
     * Tests that ran at the baseline and no longer run (deleted, renamed away, emptied, filtered, skipped by any
     * spelling), by id (up to 100 listed). null: nothing to compare (see the baseline-tests record). Absent in 0.2.
     */
    testsGone: z.optional(
      z.nullable(z.strictObject({ ids: z.array(z.string()), count, baselineRan: count, nowRan: count })),
    ),
    /**
     * Why tests of the baseline no longer run or check less, as the agent stated it with this verification: the
     * council judges it (its approval accepts it) and the receipt shows it. Absent: none was given.
     */
    testRemovalReason: z.optional(z.string()),
    /** Whether the baseline's tests could be counted, and how many ran (see testsGone). Absent in 0.2. */
    baselineTests: z.optional(z.nullable(z.strictObject({ available: z.boolean(), ran: count }))),
    /** What the server could not know, in plain words. */
    notes: z.array(z.string()),
  });
  return { baselineTests, verification };
});
type Schemas = ReturnType<typeof schemas>;

export type BaselineTests = z.infer<Schemas['baselineTests']>;
export const BASELINE_TESTS_RECORD = lazyRecord<BaselineTests>('baseline-tests', () => schemas().baselineTests);
export const baselineTestsFile = (runId: string) => `verify/${runId}/baseline-tests`;

export type VerificationRecord = z.infer<Schemas['verification']>;
export type CheckFact = VerificationRecord['checks'][number];
export type CheckVerdict = CheckFact['verdict'];

export const VERIFICATION_RECORD = lazyRecord<VerificationRecord>('verification', () => schemas().verification);

export const verifyDir = (runId: string) => `verify/${runId}/`;
export const verificationFile = (runId: string, id: string) => `${verifyDir(runId)}${id}`;
export const verificationId = (n: number) => `v${String(n).padStart(4, '0')}`;
export const VERIFICATION_ID = /^v(\d{4,})$/;
