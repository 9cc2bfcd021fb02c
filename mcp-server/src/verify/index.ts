/**
 * Verification run by the server: the facts behind `loki_verify`, and the API the completion gate reads.
 *
 * A verification runs the project's checks (build, test, lint) itself, then measures the change since the run's
 * git baseline, and stores everything as one write-once record (document `verify/<runId>/v<NNNN>`), audited as
 * `verify.run`. Checks run outside any transaction (they may take minutes); the id allocation and the write are
 * one. Verifications of one project in this process run one at a time, so two checks never race in one tree.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CheckName } from '../domain/checks.js';
import type { Project } from '../project.js';
import { git, isGitRepository, snapshotTree } from '../run/git.js';
import { activeRun } from '../run/state.js';
import { readFileIfExists } from '../store/fsx.js';
import { SafeDir, checkId } from '../store/paths.js';
import { scrubText } from '../domain/secrets.js';
import type { TestReport } from '../domain/test-runners.js';
import type { Store } from '../store/store.js';
import { changeFacts } from './changes.js';
import { normaliseOnly, projectChecks, runCheck } from './checks.js';
import { verificationFindings } from './findings.js';
import { baselineTests, hadNoTests, testsGone } from './baseline.js';
import { openCleanRoom } from './room.js';
import {
  VERIFICATION_ID,
  VERIFICATION_RECORD,
  verificationFile,
  verificationId,
  verifyDir,
  type CheckFact,
  type VerificationRecord,
} from './record.js';

const MAX_MANIFEST_BYTES = 1024 * 1024;

export { verificationFindings, type VerificationFindings } from './findings.js';
export { VERIFICATION_RECORD, type CheckFact, type CheckVerdict, type VerificationRecord } from './record.js';
export type { CheckName } from '../domain/checks.js';

export interface VerifyOptions {
  /** Run only these checks (the others are recorded as not run). Default: all three. */
  only?: CheckName[];
  /** Why tests of the baseline no longer run or check less (see the record's field). */
  testRemovalReason?: string | undefined;
}

/** A stated reason for removed tests: long enough to say why, short enough for a brief. */
export const REMOVAL_REASON_CHARS = { min: 10, max: 1000 } as const;

const inFlight = new Map<string, Promise<unknown>>();

/** Run the checks and gather the facts for the active run, store them, and return the record. */
export async function runVerification(project: Project, opts: VerifyOptions = {}): Promise<VerificationRecord> {
  const previous = inFlight.get(project.root) ?? Promise.resolve();
  const mine = previous.catch(() => undefined).then(() => verifyNow(project, opts));
  inFlight.set(project.root, mine);
  try {
    return await mine;
  } finally {
    if (inFlight.get(project.root) === mine) inFlight.delete(project.root);
  }
}

async function verifyNow(project: Project, opts: VerifyOptions): Promise<VerificationRecord> {
  const run = activeRun(project, 'verifying');
  const config = project.config();
  const store = project.openStore();
  const root = store.project.root;
  const startedAt = new Date().toISOString();
  const only = normaliseOnly(opts.only);
  const repository = isGitRepository(root);
  const codeState = repository ? snapshotTree(root) : null;
  const notes: string[] = [];

  // The tests the baseline ran, once per run, before the checks (its own clean room, its own test command).
  const baseline =
    codeState && only.includes('test')
      ? await baselineTests(store, run, config.checks, config.checks.timeoutSeconds, project.env)
      : null;

  // The checks run on the snapshot, in a clean room, so what they judge is exactly codeState.
  const room = codeState ? tryCleanRoom(root, codeState, notes) : null;
  // Without a room (no git) the runner's report still goes to a private folder of its own.
  const reports = room?.reports ?? fs.mkdtempSync(path.join(os.tmpdir(), 'loki-reports-'));
  const checks: CheckFact[] = [];
  let report: TestReport | undefined;
  try {
    const where = room ? SafeDir.open(room.dir) : store.project;
    const packageJson = readFileIfExists(where, 'package.json', MAX_MANIFEST_BYTES)?.toString('utf8');
    for (const c of projectChecks(where, config.checks)) {
      const { report: r, ...fact } = await runCheck(c, {
        cwd: where.root,
        timeoutSeconds: config.checks.timeoutSeconds,
        env: project.env,
        only,
        reports: { dir: reports, packageJson },
      });
      if (r) report = r;
      checks.push(fact);
    }
  } finally {
    if (room) room.close();
    else fs.rmSync(reports, { recursive: true, force: true });
  }
  // Counted by id now but not at the baseline: say why the comparison could not be made.
  // Counted by id now but not at the baseline: say why the comparison could not be made (a baseline without a test
  // command, a new project, had nothing to compare).
  if (baseline && !baseline.available && report && !hadNoTests(baseline))
    notes.push(`The tests could not be compared with the baseline's: ${baseline.why}.`);
  if (repository && !room) {
    notes.push(
      'The checks ran in the project folder, not on a snapshot of the code (git could not snapshot the working tree): files outside git, and files changed while they ran, may have affected them.',
    );
  }
  const changes = changeFacts(root, run, repository, codeState, notes);
  const head = repository ? git(root, ['rev-parse', '--verify', '-q', 'HEAD']) : null;
  const draft: Omit<VerificationRecord, 'id'> = {
    runId: run.runId,
    startedAt,
    finishedAt: new Date().toISOString(),
    only,
    codeState,
    // Kept for the record's shape: in the clean room the checks cannot change the snapshot they run on.
    codeStateBefore: codeState,
    cleanRoom: room ? { linked: room.linked } : null,
    git: { repository, baselineCommit: run.git.baselineCommit, headSha: head?.ok ? head.out : null },
    checks,
    ...changes,
    testsGone: testsGone(baseline, report, changes.diff.files),
    baselineTests: baseline ? { available: baseline.available, ran: baseline.ran.length } : null,
    // Agent text kept in a record the council and the receipt show: scrubbed like every other note.
    ...(opts.testRemovalReason?.trim() ? { testRemovalReason: scrubText(opts.testRemovalReason.trim()).text } : {}),
    notes,
  };
  return store.mutate(
    () => writeOnce(store, run.runId, draft),
    (r) => ({
      action: 'verify.run',
      target: r.id,
      data: {
        runId: r.runId,
        id: r.id,
        codeState: r.codeState,
        verdicts: Object.fromEntries(r.checks.map((c) => [c.name, c.verdict])),
        filesChanged: r.diff.available ? r.diff.filesChanged : null,
        blocking: verificationFindings(r).blocking.length,
      },
    }),
  );
}

/** The clean room, or null with the reason in `notes` (the checks then run in the project folder). */
function tryCleanRoom(root: string, tree: string, notes: string[]): ReturnType<typeof openCleanRoom> | null {
  try {
    return openCleanRoom(root, tree);
  } catch (err) {
    notes.push(`The snapshot could not be written into a clean room (${(err as Error).message}).`);
    return null;
  }
}

/** Inside the transaction: the next id in order, created once (a record is never overwritten). */
function writeOnce(store: Store, runId: string, draft: Omit<VerificationRecord, 'id'>): VerificationRecord {
  for (let n = lastNumber(store, runId) + 1; ; n++) {
    const record: VerificationRecord = { id: verificationId(n), ...draft };
    if (store.records.create(verificationFile(runId, record.id), VERIFICATION_RECORD, record)) return record;
  }
}

function recordNumbers(store: Store, runId: string): number[] {
  const prefix = verifyDir(checkId(runId, 'runId'));
  return store.records
    .keys(prefix, VERIFICATION_RECORD)
    .map((key) => VERIFICATION_ID.exec(key.slice(prefix.length))?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

function lastNumber(store: Store, runId: string): number {
  return recordNumbers(store, runId).at(-1) ?? 0;
}

/** Every verification of a run, oldest first. */
export function listVerifications(project: Project, runId: string): VerificationRecord[] {
  const store = project.existingStore();
  if (!store) return [];
  return recordNumbers(store, runId)
    .map((n) => store.records.read(verificationFile(runId, verificationId(n)), VERIFICATION_RECORD))
    .filter((r): r is VerificationRecord => r !== undefined);
}

/** The newest valid verification of a run, or undefined. */
export function latestVerification(project: Project, runId: string): VerificationRecord | undefined {
  const store = project.existingStore();
  if (!store) return undefined;
  for (const n of recordNumbers(store, runId).reverse()) {
    const r = store.records.read(verificationFile(runId, verificationId(n)), VERIFICATION_RECORD);
    if (r) return r;
  }
  return undefined;
}

/**
 * The code-state fingerprint of the working tree now (the same value a record's `codeState` holds), or null
 * when the project is not a git repository. Equal values mean no file outside .loki/ changed.
 */
export function currentCodeState(root: string): string | null {
  return isGitRepository(root) ? snapshotTree(root) : null;
}
