/**
 * The change facts of a verification, from git: the diff between the run's baseline snapshot and the working
 * tree now, test files deleted or newly skipped since the baseline, and secrets introduced in changed files.
 * Where git cannot tell (no repository, no baseline), the facts say `available: false` and a note says why.
 */
import { findSecrets } from '../domain/secrets.js';
import { isTestFile, mayHoldTests, newlySkipped } from '../domain/test-files.js';
import { git } from '../run/git.js';
import type { RunState } from '../run/records.js';
import { diffTrees, readBlobs, type ChangedFile } from './gitfacts.js';
import type { VerificationRecord } from './record.js';

export const MAX_LISTED_FILES = 500;
/** Files larger than this are not read for skip markers or secrets (the record says so). */
export const MAX_SCAN_BYTES = 1024 * 1024;
export const MAX_SCANNED_FILES = 5000;

type ChangeFacts = Pick<VerificationRecord, 'diff' | 'testFiles' | 'secrets'>;

const UNAVAILABLE: ChangeFacts = {
  diff: { available: false, filesChanged: 0, insertions: 0, deletions: 0, files: [], filesOmitted: 0 },
  testFiles: { available: false, deleted: [], newlySkipped: [] },
  secrets: { available: false, scannedFiles: 0, findings: [], preexisting: 0, skipped: [] },
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
  const baseTree = git(root, ['rev-parse', '--verify', '-q', `${baseline}^{tree}`]);
  const changed = baseTree.ok ? diffTrees(root, baseTree.out, nowTree) : null;
  if (!changed) {
    notes.push(
      `The run's baseline commit ${baseline.slice(0, 12)} cannot be read (was refs/loki/runs removed?), so there is ${lost}.`,
    );
    return unavailable();
  }
  return { ...diffFacts(changed), ...contentFacts(root, changed) };
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

function contentFacts(root: string, changed: ChangedFile[]): Omit<ChangeFacts, 'diff'> {
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
  const textOf = (id: string | null): string | null => {
    const b = id ? blobs.get(id) : undefined;
    return b?.data && !isBinary(b.data) ? b.data.toString('utf8') : null;
  };

  const newly: ChangeFacts['testFiles']['newlySkipped'] = [];
  const findings: ChangeFacts['secrets']['findings'] = [];
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
    if (isBinary(blob.data)) {
      skipped.push({ file: f.path, reason: 'binary' });
      continue;
    }
    const text = blob.data.toString('utf8');
    const before = f.status === 'A' ? null : textOf(f.oldBlob);
    scannedFiles++;
    if (mayHoldTests(f.path)) {
      const s = newlySkipped(f.path, before, text);
      if (s) newly.push(s);
    }
    for (const s of findSecrets(text)) {
      // A secret already in the baseline version of this file was not introduced by the run.
      if (before !== null && before.includes(text.slice(s.start, s.end))) {
        preexistingSecrets++;
        continue;
      }
      findings.push({ file: f.path, line: lineOf(text, s.start), kind: s.kind });
    }
  }
  return {
    testFiles: { available: true, deleted, newlySkipped: newly },
    secrets: { available: true, scannedFiles, findings, preexisting: preexistingSecrets, skipped },
  };
}

/** A NUL byte in the first 8 KB, git's own test. */
function isBinary(data: Buffer): boolean {
  return data.subarray(0, 8000).includes(0);
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
