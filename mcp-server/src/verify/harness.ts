/**
 * The harness facts of a verification (domain/harness.ts says what the harness is): which test scripts, runner
 * configurations, conftest files and CI files changed between the run's baseline snapshot and the snapshot
 * verified, read from git objects, and whether the baseline had tests at all (a new project's first package.json
 * is not a changed harness).
 */
import { harnessChanges, isHarnessFile, type HarnessChange } from '../domain/harness.js';
import { isTestFile } from '../domain/test-files.js';
import { git } from '../run/git.js';
import { readBlobs, type ChangedFile } from './gitfacts.js';

const MAX_HARNESS_BYTES = 1024 * 1024;

export interface HarnessFacts {
  changes: HarnessChange[];
  baselineHadTests: boolean;
}

/** From the diff between the baseline tree and the snapshot, which verify/changes.ts has already read. */
export function harnessFacts(root: string, baseTree: string, changed: readonly ChangedFile[]): HarnessFacts {
  // A rename is a deletion of the old path and an addition of the new one, as far as the harness goes.
  const sides = changed.flatMap((f) =>
    f.status === 'R' && f.from
      ? [
          { path: f.from, oldBlob: f.oldBlob, newBlob: null },
          { path: f.path, oldBlob: null, newBlob: f.newBlob },
        ]
      : [{ path: f.path, oldBlob: f.status === 'A' ? null : f.oldBlob, newBlob: f.status === 'D' ? null : f.newBlob }],
  );
  const relevant = sides.filter((f) => isHarnessFile(f.path));
  const blobs = readBlobs(
    root,
    relevant.flatMap((f) => [f.oldBlob, f.newBlob].filter((b): b is string => b !== null)),
    MAX_HARNESS_BYTES,
  );
  // A blob too large to read compares as its id: any change to it still counts.
  const textOf = (id: string | null) => (id === null ? null : (blobs.get(id)?.data?.toString('utf8') ?? `blob ${id}`));
  const changes = harnessChanges(
    relevant.map((f) => ({ path: f.path, before: textOf(f.oldBlob), after: textOf(f.newBlob) })),
  );
  const listing = git(root, ['ls-tree', '-r', '-z', '--name-only', baseTree]);
  const baselineHadTests = listing.ok && listing.out.split('\0').some((p) => p !== '' && isTestFile(p));
  return { changes, baselineHadTests };
}
