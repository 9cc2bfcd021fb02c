/**
 * The run's git baseline: HEAD plus a snapshot of the whole working tree (tracked and untracked, not ignored,
 * without .loki/) taken through a private index, so the user's index, HEAD and stash are never touched. The
 * snapshot is kept reachable under refs/loki/runs/<run>/baseline.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
}

export function git(cwd: string, args: string[], env?: NodeJS.ProcessEnv): GitResult {
  const r = spawnSync('git', args, {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', ...env },
    encoding: 'utf8',
    timeout: GIT_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) return { ok: false, out: '', err: r.error.message };
  return { ok: r.status === 0, out: r.stdout.trim(), err: r.stderr.trim() };
}

export function isGitRepository(root: string): boolean {
  const r = git(root, ['rev-parse', '--show-toplevel']);
  return r.ok;
}

/** A tree object of the working tree as it is now (excluding .loki/), built in a throwaway index. */
export function snapshotTree(root: string): string | null {
  const index = path.join(os.tmpdir(), `loki-index-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  const env = { GIT_INDEX_FILE: index };
  try {
    const head = git(root, ['rev-parse', '--verify', '-q', 'HEAD']);
    if (head.ok) git(root, ['read-tree', 'HEAD'], env);
    const add = git(root, ['add', '-A', '--', '.', ':(exclude).loki'], env);
    if (!add.ok) return null;
    const tree = git(root, ['write-tree'], env);
    return tree.ok ? tree.out : null;
  } finally {
    fs.rmSync(index, { force: true });
  }
}

export function recordBaseline(root: string, runId: string): GitBaseline {
  if (!isGitRepository(root)) {
    return { repository: false, headSha: null, branch: null, baselineCommit: null, note: 'not a git repository: code changes cannot be measured' };
  }
  const head = git(root, ['rev-parse', '--verify', '-q', 'HEAD']);
  const headSha = head.ok ? head.out : null;
  const branchResult = git(root, ['symbolic-ref', '-q', '--short', 'HEAD']);
  const branch = branchResult.ok ? branchResult.out : null;
  const tree = snapshotTree(root);
  if (!tree) return { repository: true, headSha, branch, baselineCommit: null, note: 'could not snapshot the working tree' };
  const commitArgs = ['commit-tree', tree, '-m', `loki-mode baseline for run ${runId}`];
  if (headSha) commitArgs.push('-p', headSha);
  const commit = git(root, commitArgs, {
    GIT_AUTHOR_NAME: 'loki-mode',
    GIT_AUTHOR_EMAIL: 'loki-mode@localhost',
    GIT_COMMITTER_NAME: 'loki-mode',
    GIT_COMMITTER_EMAIL: 'loki-mode@localhost',
  });
  if (!commit.ok) return { repository: true, headSha, branch, baselineCommit: null, note: `could not record the baseline: ${commit.err}` };
  git(root, ['update-ref', `refs/loki/runs/${runId}/baseline`, commit.out]);
  return { repository: true, headSha, branch, baselineCommit: commit.out, note: headSha ? null : 'the repository had no commits when the run started' };
}

/** Files that differ between the baseline snapshot and the working tree now (excluding .loki/). */
export function changedFilesSince(root: string, baselineCommit: string): string[] | null {
  const now = snapshotTree(root);
  if (!now) return null;
  const diff = git(root, ['diff', '--name-only', '--no-renames', `${baselineCommit}^{tree}`, now]);
  if (!diff.ok) return null;
  return diff.out === '' ? [] : diff.out.split('\n');
}
