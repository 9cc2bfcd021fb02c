/**
 * Working-tree snapshots as git objects, for the run's baseline and for checkpoints: the whole working tree
 * (tracked and untracked, not ignored, without .loki/) is written through a private index, so the user's index,
 * HEAD, branch, stash and HEAD's reflog are never touched. Snapshots are kept reachable under refs of our own:
 * refs/loki/runs/<run>/baseline and refs/loki/checkpoints/<id>. Restoring a snapshot also goes through a private
 * index and changes only the files that differ; ignored files and .git are never touched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { faultPoint } from '../store/fault.js';

const GIT_TIMEOUT_MS = 60_000;

export interface GitBaseline {
  repository: boolean;
  /** HEAD when the run started (null: no commits yet, or not a repository). */
  headSha: string | null;
  branch: string | null;
  /** Commit holding the working-tree snapshot at run start. */
  baselineCommit: string | null;
  note: string | null;
}

export interface GitResult {
  ok: boolean;
  out: string;
  err: string;
  /** git's exit status; null when it did not run to an exit (not found, killed, timed out). */
  status: number | null;
}

export const LOKI_IDENTITY = {
  GIT_AUTHOR_NAME: 'loki-mode',
  GIT_AUTHOR_EMAIL: 'loki-mode@localhost',
  GIT_COMMITTER_NAME: 'loki-mode',
  GIT_COMMITTER_EMAIL: 'loki-mode@localhost',
};

/**
 * Variables that would point git at another repository, index or object store, or rename the replace refs: the
 * server's git calls ignore them whatever environment the host started it with.
 */
const REDIRECTING = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR',
  'GIT_NAMESPACE',
  'GIT_REPLACE_REF_BASE',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
];

/**
 * Settings every call overrides, because the agent can set them in .git/config: an fsmonitor hook answers
 * "nothing changed" for files that did, the untracked cache can be primed to hide new files, and hooks
 * (post-index-change, post-checkout) run code in the middle of the server's own commands.
 */
const PINNED = ['-c', 'core.fsmonitor=false', '-c', 'core.untrackedCache=false', '-c', 'core.hooksPath=/dev/null'];

export function git(cwd: string, args: string[], env?: NodeJS.ProcessEnv, input?: string): GitResult {
  // Loaded on first use: the hooks load this module but seldom run git, and child_process costs milliseconds.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const inherited = { ...process.env };
  for (const k of REDIRECTING) delete inherited[k];
  const r = spawnSync('git', [...PINNED, ...args], {
    cwd,
    env: {
      ...inherited,
      GIT_TERMINAL_PROMPT: '0',
      GIT_OPTIONAL_LOCKS: '0',
      // Literal pathspecs: a file named "*.ts" or ":(glob)x" is that file, nothing more.
      GIT_LITERAL_PATHSPECS: '1',
      // `git replace` can make any object read as another (a changed file as its baseline version): the server's
      // facts are about the objects themselves.
      GIT_NO_REPLACE_OBJECTS: '1',
      ...env,
    },
    encoding: 'utf8',
    timeout: GIT_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
    ...(input !== undefined ? { input } : {}),
  });
  if (r.error) return { ok: false, out: '', err: r.error.message, status: null };
  return { ok: r.status === 0, out: r.stdout.trim(), err: r.stderr.trim(), status: r.status };
}

/** Run `fn` with a private, throwaway index file (GIT_INDEX_FILE), removed afterwards. */
function withPrivateIndex<T>(fn: (env: NodeJS.ProcessEnv) => T): T {
  const index = path.join(os.tmpdir(), `loki-index-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  try {
    return fn({ GIT_INDEX_FILE: index });
  } finally {
    fs.rmSync(index, { force: true });
  }
}

export function isGitRepository(root: string): boolean {
  const r = git(root, ['rev-parse', '--show-toplevel']);
  return r.ok;
}

/**
 * A tree object of the working tree as it is now (excluding .loki/), built in a fresh throwaway index: every
 * file is hashed from its content. The user's index is never a starting point, because the agent controls it:
 * its assume-unchanged and skip-worktree bits, or stat data copied from an unchanged file, would make `git add`
 * keep the old blob for a file that changed. (Hashing 1,000 files this way costs about 50 ms instead of 35.)
 */
export function snapshotTree(root: string): string | null {
  return withPrivateIndex((env) => {
    // Magic pathspecs need GIT_LITERAL_PATHSPECS off for this one call.
    const add = git(root, ['add', '-A', '--', '.', ':(exclude).loki'], { ...env, GIT_LITERAL_PATHSPECS: '0' });
    if (!add.ok) return null;
    const tree = git(root, ['write-tree'], env);
    return tree.ok ? tree.out : null;
  });
}

/** The tree id of `commit` (null when git cannot read it). */
export function treeOf(root: string, commit: string): string | null {
  const r = git(root, ['rev-parse', '--verify', '-q', `${commit}^{tree}`]);
  return r.ok ? r.out : null;
}

/** HEAD's commit (null without commits) and branch (null when detached or not a repository). */
export function headInfo(root: string): { headSha: string | null; branch: string | null } {
  const head = git(root, ['rev-parse', '--verify', '-q', 'HEAD']);
  const branch = git(root, ['symbolic-ref', '-q', '--short', 'HEAD']);
  return { headSha: head.ok ? head.out : null, branch: branch.ok ? branch.out : null };
}

/**
 * Commit a snapshot tree (parent: HEAD, when there is one) and point `ref` (under refs/loki/) at it, so git gc
 * keeps it. Returns the commit, or the reason it could not be recorded.
 */
export function commitSnapshot(
  root: string,
  tree: string,
  message: string,
  ref: string,
  parent: string | null,
): { commit: string } | { error: string } {
  const commit = commitTree(root, tree, message, parent);
  if ('error' in commit) return commit;
  const update = updateRef(root, ref, commit.commit);
  return update ? { error: update } : commit;
}

/** A commit of `tree` (parent: `parent`, when given) under loki-mode's identity; nothing refers to it yet. */
export function commitTree(
  root: string,
  tree: string,
  message: string,
  parent: string | null,
): { commit: string } | { error: string } {
  const args = ['commit-tree', tree, '-m', message];
  if (parent) args.push('-p', parent);
  const commit = git(root, args, LOKI_IDENTITY);
  return commit.ok ? { commit: commit.out } : { error: commit.err };
}

/** Point `ref` at `commit`; the reason when git refused, else null. */
export function updateRef(root: string, ref: string, commit: string): string | null {
  const r = git(root, ['update-ref', ref, commit]);
  return r.ok ? null : r.err;
}

export function deleteRef(root: string, ref: string): void {
  git(root, ['update-ref', '-d', ref]);
}

/**
 * Why the snapshot under `ref` cannot be restored, or null when every object is there. `definite`: git ran and
 * said the ref or an object does not exist (or the ref points elsewhere); otherwise git itself failed (not
 * installed, "dubious ownership", a lock, a timeout) and nothing is known about the snapshot: `problem` then
 * carries git's own words, and nobody may treat the snapshot as gone.
 */
export function snapshotProblem(root: string, ref: string, commit: string): SnapshotProblem | null {
  const at = git(root, ['rev-parse', '--verify', '-q', ref]);
  // `rev-parse --verify -q` exits 1, silently, for a name that does not resolve; anything else is git failing.
  if (!at.ok)
    return at.status === 1 && at.err === ''
      ? { problem: `git ref ${ref} is missing`, definite: true }
      : gitFailed(at, `cannot check git ref ${ref}`);
  if (at.out !== commit)
    return {
      problem: `git ref ${ref} points at ${at.out.slice(0, 12)}, not the recorded ${commit.slice(0, 12)}`,
      definite: true,
    };
  const listing = git(root, ['ls-tree', '-r', '-z', '--full-tree', `${commit}^{tree}`]);
  if (!listing.ok)
    return MISSING_OBJECT.test(listing.err)
      ? { problem: `git objects of ${commit.slice(0, 12)} are missing (${listing.err.split('\n')[0]})`, definite: true }
      : gitFailed(listing, `cannot list the git objects of ${commit.slice(0, 12)}`);
  const blobs = listing.out
    .split('\0')
    .filter(Boolean)
    .map((line) => line.split(/\s/, 3))
    .filter((f) => f[1] === 'blob')
    .map((f) => f[2]);
  if (blobs.length === 0) return null;
  const check = git(root, ['cat-file', '--batch-check'], undefined, `${blobs.join('\n')}\n`);
  if (!check.ok) return gitFailed(check, `cannot check the git objects of ${commit.slice(0, 12)}`);
  const missing = check.out.split('\n').filter((l) => l.endsWith(' missing'));
  return missing.length > 0
    ? {
        problem: `${missing.length} file(s) of the code snapshot are missing from the git object store`,
        definite: true,
      }
    : null;
}

export interface SnapshotProblem {
  problem: string;
  /** Git said the snapshot is gone; false: git could not be asked, so nothing is known. */
  definite: boolean;
}

/** git's words for an object it looked for and does not have. */
const MISSING_OBJECT =
  /not a tree object|bad object|invalid object|missing|unable to read|could not read|bad revision/i;

const gitFailed = (r: GitResult, what: string): SnapshotProblem => ({
  problem: `${what}: git failed (${r.status === null ? 'did not run' : `exit ${r.status}`}): ${(r.err || 'no message').split('\n')[0]}`,
  definite: false,
});

/** Files that differ between two trees, as NUL-separated `git diff-tree --name-status` output. */
export function diffTrees(root: string, from: string, to: string): string {
  const r = git(root, ['diff-tree', '-r', '-z', '--no-renames', '--name-status', from, to]);
  if (!r.ok) throw new Error(`git diff-tree failed: ${r.err}`);
  return r.out;
}

/**
 * Make the working tree's non-ignored files equal to `to`, given that they are `from` now: remove `removed`,
 * write `written` (added, modified or changed type) from `to`. Only those paths are touched, through a private
 * index; HEAD, the branch, the user's index and ignored files are left alone. Safe to repeat.
 */
export function checkoutTree(
  root: string,
  to: string,
  from: string,
  removed: readonly string[],
  written: readonly string[],
): void {
  withPrivateIndex((env) => {
    if (removed.length > 0) {
      must(git(root, ['read-tree', from], env), 'read-tree');
      // `git rm -f` deletes the files and any folder it leaves empty; paths that are already gone are skipped.
      must(
        git(
          root,
          ['rm', '-q', '-f', '--ignore-unmatch', '--pathspec-from-file=-', '--pathspec-file-nul'],
          env,
          `${removed.join('\0')}\0`,
        ),
        'rm',
      );
      faultPoint('rollback-code-removed');
    }
    if (written.length > 0) {
      must(git(root, ['read-tree', to], env), 'read-tree');
      must(git(root, ['checkout-index', '-f', '-z', '--stdin'], env, `${written.join('\0')}\0`), 'checkout-index');
    }
  });
}

function must(r: GitResult, what: string): void {
  if (!r.ok) throw new Error(`git ${what} failed: ${r.err}`);
}

export function recordBaseline(root: string, runId: string): GitBaseline {
  if (!isGitRepository(root)) {
    return {
      repository: false,
      headSha: null,
      branch: null,
      baselineCommit: null,
      note: 'not a git repository: code changes cannot be measured',
    };
  }
  const { headSha, branch } = headInfo(root);
  const tree = snapshotTree(root);
  if (!tree)
    return { repository: true, headSha, branch, baselineCommit: null, note: 'could not snapshot the working tree' };
  const commit = commitSnapshot(
    root,
    tree,
    `loki-mode baseline for run ${runId}`,
    `refs/loki/runs/${runId}/baseline`,
    headSha,
  );
  if ('error' in commit)
    return {
      repository: true,
      headSha,
      branch,
      baselineCommit: null,
      note: `could not record the baseline: ${commit.error}`,
    };
  return {
    repository: true,
    headSha,
    branch,
    baselineCommit: commit.commit,
    note: headSha ? null : 'the repository had no commits when the run started',
  };
}

/** Files that differ between the baseline snapshot and the working tree now (excluding .loki/). */
export function changedFilesSince(root: string, baselineCommit: string): string[] | null {
  const now = snapshotTree(root);
  if (!now) return null;
  const diff = git(root, ['diff', '--name-only', '--no-renames', `${baselineCommit}^{tree}`, now]);
  if (!diff.ok) return null;
  return diff.out === '' ? [] : diff.out.split('\n');
}
