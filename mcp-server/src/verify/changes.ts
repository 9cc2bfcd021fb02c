/**
 * The change facts of a verification, from git: the diff between the run's baseline snapshot and the working
 * tree now, test files deleted or newly skipped since the baseline, and secrets introduced in changed files.
 * Where git cannot tell (no repository, no baseline), the facts say `available: false` and a note says why.
 */
import { decodeForScan, scanForSecrets, type DecodedFile } from '../domain/secret-scan.js';
import { fewerAssertions, isTestFile, mayHoldTests, newlySkipped } from '../domain/test-files.js';
import { treeOf } from '../run/git.js';
import type { RunState } from '../run/records.js';
import { diffTrees, readBlobs, type ChangedFile } from './gitfacts.js';
import { harnessFacts } from './harness.js';
import type { VerificationRecord } from './record.js';

export const MAX_LISTED_FILES = 500;
/** Files larger than this are not read for skip markers or secrets (the record says so). */
export const MAX_SCAN_BYTES = 1024 * 1024;
export const MAX_SCANNED_FILES = 5000;

type ChangeFacts = Pick<VerificationRecord, 'diff' | 'testFiles' | 'secrets' | 'harness'>;

const UNAVAILABLE: ChangeFacts = {
  diff: { available: false, filesChanged: 0, insertions: 0, deletions: 0, files: [], filesOmitted: 0 },
  testFiles: { available: false, deleted: [], newlySkipped: [] },
  secrets: { available: false, scannedFiles: 0, findings: [], allowed: [], preexisting: 0, skipped: [] },
  harness: null,
};

const unavailable = (): ChangeFacts => structuredClone(UNAVAILABLE);

/**
 * `nowTree` is the snapshot of the working tree (null when it could not be taken); `notes` receives the plain
 * words for anything the server could not know.
 */
export function changeFacts(
  root: string,
  run: RunState,
  repository: boolean,
  nowTree: string | null,
  notes: string[],
): ChangeFacts {
  const lost = 'no diff, no check for deleted or newly skipped test files, and no secret scan of changed files';
  if (!repository) {
    notes.push(
      `Not a git repository: the server cannot measure what changed, so there is ${lost}, and no code-state fingerprint. Run \`git init\` and commit, then start a new run (loki_start with restart) to get these checks.`,
    );
    return unavailable();
  }
  const baseline = run.git.baselineCommit;
  if (!baseline) {
    notes.push(
      `No git baseline was recorded when this run started (${run.git.note ?? 'reason unknown'}), so there is ${lost}. Start a new run (loki_start with restart) in the repository to record one.`,
    );
    return unavailable();
  }
  if (!nowTree) {
    notes.push(
      `git could not snapshot the working tree, so there is ${lost}. Check that \`git add -A --dry-run\` works in the project.`,
    );
    return unavailable();
  }
  const baseTree = treeOf(root, baseline);
  const changed = baseTree ? diffTrees(root, baseTree, nowTree) : null;
  if (!baseTree || !changed) {
    notes.push(
      `The run's baseline commit ${baseline.slice(0, 12)} cannot be read (was refs/loki/runs removed?), so there is ${lost}.`,
    );
    return unavailable();
  }
  return {
    ...diffFacts(changed),
    ...contentFacts(root, changed),
    harness: harnessFacts(root, baseTree, changed),
  };
}

function diffFacts(changed: ChangedFile[]): Pick<ChangeFacts, 'diff'> {
  let insertions = 0;
  let deletions = 0;
  for (const f of changed) {
    insertions += f.insertions ?? 0;
    deletions += f.deletions ?? 0;
  }
  return {
    diff: {
      available: true,
      filesChanged: changed.length,
      insertions,
      deletions,
      files: changed.slice(0, MAX_LISTED_FILES).map((f) => ({
        path: f.path,
        status: f.status,
        from: f.from,
        insertions: f.insertions,
        deletions: f.deletions,
      })),
      filesOmitted: Math.max(0, changed.length - MAX_LISTED_FILES),
    },
  };
}

const REGULAR = new Set(['100644', '100755']);

function contentFacts(root: string, changed: ChangedFile[]): Pick<ChangeFacts, 'testFiles' | 'secrets'> {
  const deleted = changed.filter((f) => f.status === 'D' && isTestFile(f.path)).map((f) => f.path);
  const current = changed.filter((f) => f.status !== 'D');
  const scanned = current.slice(0, MAX_SCANNED_FILES);
  const skipped: { file: string; reason: string }[] = current
    .slice(MAX_SCANNED_FILES)
    .map((f) => ({ file: f.path, reason: `over the limit of ${MAX_SCANNED_FILES} files per scan` }));
  const ids: string[] = [];
  for (const f of scanned) {
    if (f.newBlob && f.mode && REGULAR.has(f.mode)) ids.push(f.newBlob);
    if (f.oldBlob && f.status !== 'A') ids.push(f.oldBlob);
  }
  const blobs = readBlobs(root, ids, MAX_SCAN_BYTES);
  const decodedOf = (file: string, id: string | null): DecodedFile | null => {
    const b = id ? blobs.get(id) : undefined;
    return b?.data ? decodeForScan(file, b.data) : null;
  };

  const newly: ChangeFacts['testFiles']['newlySkipped'] = [];
  const thinner: NonNullable<ChangeFacts['testFiles']['fewerAssertions']> = [];
  const findings: ChangeFacts['secrets']['findings'] = [];
  const allowed: NonNullable<ChangeFacts['secrets']['allowed']> = [];
  let scannedFiles = 0;
  let preexistingSecrets = 0;
  for (const f of scanned) {
    if (!f.mode || !REGULAR.has(f.mode) || !f.newBlob) {
      skipped.push({
        file: f.path,
        reason: `not a file (${f.mode === '120000' ? 'symbolic link' : f.mode === '160000' ? 'submodule' : `mode ${f.mode ?? 'unknown'}`})`,
      });
      continue;
    }
    const blob = blobs.get(f.newBlob);
    if (!blob?.data) {
      skipped.push({ file: f.path, reason: blob?.skipped ?? 'git could not read it' });
      continue;
    }
    // A NUL byte does not end the scan: a source file is decoded and read (a NUL would otherwise hide a test
    // file's skips and a secret from every check), and a binary file is searched for provider formats.
    const now = decodeForScan(f.path, blob.data);
    const before = f.status === 'A' ? null : decodedOf(f.from ?? f.path, f.oldBlob);
    scannedFiles++;
    if (mayHoldTests(f.path) && !now.binary) {
      const s = newlySkipped(f.path, before && !before.binary ? before.text : null, now.text);
      if (s) newly.push(s);
      const fewer = fewerAssertions(f.path, before && !before.binary ? before.text : null, now.text);
      if (fewer) thinner.push(fewer);
    }
    for (const s of scanForSecrets(f.path, now)) {
      // A secret already in the baseline version of this file was not introduced by the run.
      if (before !== null && before.text.includes(now.text.slice(s.start, s.end))) {
        preexistingSecrets++;
        continue;
      }
      if (s.allowed !== null) allowed.push({ file: f.path, line: s.line, kind: s.kind, reason: s.allowed });
      else findings.push({ file: f.path, line: s.line, kind: s.kind });
    }
  }
  return {
    testFiles: { available: true, deleted, newlySkipped: newly, fewerAssertions: thinner },
    secrets: { available: true, scannedFiles, findings, allowed, preexisting: preexistingSecrets, skipped },
  };
}
