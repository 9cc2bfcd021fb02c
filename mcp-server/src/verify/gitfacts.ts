/**
 * Git facts for a verification: what changed between the run's baseline snapshot and a snapshot of the working
 * tree now (both trees exclude `.loki/`; the snapshot is built in a throwaway index, so the user's index, HEAD
 * and stash are never touched), and the contents of blobs on either side. Reads object ids from git, never
 * files from the working tree, so what is judged is exactly the snapshot the code state names.
 */
import { spawnSync } from 'node:child_process';
import { git } from '../run/git.js';

export type ChangeStatus = 'A' | 'M' | 'D' | 'R';

export interface ChangedFile {
  path: string;
  status: ChangeStatus;
  /** The old path of a rename. */
  from: string | null;
  /** null for binary files. */
  insertions: number | null;
  deletions: number | null;
  /** Blob ids on each side (null where the file does not exist or is not a regular file or link). */
  oldBlob: string | null;
  newBlob: string | null;
  /** 100644, 100755, 120000 (link), 160000 (submodule) on the current side. */
  mode: string | null;
}

const NULL_SHA = /^0+$/;

/** Files that differ between two trees (renames detected), with line counts. Null when git fails. */
export function diffTrees(root: string, fromTree: string, toTree: string): ChangedFile[] | null {
  const raw = git(root, ['diff', '--raw', '-z', '-M', '--no-abbrev', fromTree, toTree]);
  const stat = git(root, ['diff', '--numstat', '-z', '-M', fromTree, toTree]);
  if (!raw.ok || !stat.ok) return null;
  const files = parseRaw(raw.out);
  const counts = parseNumstat(stat.out);
  for (const f of files) {
    const c = counts.get(f.path);
    if (c) {
      f.insertions = c.insertions;
      f.deletions = c.deletions;
    }
  }
  return files;
}

/** `:old-mode new-mode old-sha new-sha status\0path\0[new-path\0]` entries. */
function parseRaw(out: string): ChangedFile[] {
  const fields = out.split('\0');
  const files: ChangedFile[] = [];
  for (let i = 0; i < fields.length; i++) {
    const head = fields[i]!;
    if (!head.startsWith(':')) continue;
    const [, newMode, oldSha, newSha, statusField] = head.slice(1).split(' ');
    const letter = statusField?.[0];
    const first = fields[++i]!;
    let status: ChangeStatus;
    let from: string | null = null;
    let file = first;
    if (letter === 'R' || letter === 'C') {
      file = fields[++i]!;
      from = letter === 'R' ? first : null;
      status = letter === 'R' ? 'R' : 'A';
    } else status = letter === 'A' ? 'A' : letter === 'D' ? 'D' : 'M';
    files.push({
      path: file,
      status,
      from,
      insertions: null,
      deletions: null,
      oldBlob: oldSha && !NULL_SHA.test(oldSha) ? oldSha : null,
      newBlob: newSha && !NULL_SHA.test(newSha) ? newSha : null,
      mode: newMode && newMode !== '000000' ? newMode : null,
    });
  }
  return files;
}

/** `ins\tdel\tpath\0` entries, or `ins\tdel\t\0old\0new\0` for a rename; `-` counts mean binary. */
function parseNumstat(out: string): Map<string, { insertions: number | null; deletions: number | null }> {
  const map = new Map<string, { insertions: number | null; deletions: number | null }>();
  const fields = out.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const m = /^\n?(-|\d+)\t(-|\d+)\t(.*)$/s.exec(fields[i]!);
    if (!m) continue;
    let file = m[3]!;
    if (file === '') {
      i += 2;
      file = fields[i] ?? '';
    }
    map.set(file, { insertions: m[1] === '-' ? null : Number(m[1]), deletions: m[2] === '-' ? null : Number(m[2]) });
  }
  return map;
}

export interface BlobRead {
  /** The blob's bytes, or null when it was not read. */
  data: Buffer | null;
  size: number;
  /** Why it was not read. */
  skipped: string | null;
}

/**
 * Read blobs by id in two batched calls: sizes first, then the contents of those at most `maxBytes` long.
 */
export function readBlobs(root: string, ids: string[], maxBytes: number): Map<string, BlobRead> {
  const out = new Map<string, BlobRead>();
  const unique = [...new Set(ids)];
  if (unique.length === 0) return out;
  const sizes = batch(root, '--batch-check', unique);
  const wanted: string[] = [];
  if (!sizes) {
    for (const id of unique) out.set(id, { data: null, size: 0, skipped: 'git could not read it' });
    return out;
  }
  for (const line of sizes.toString('utf8').split('\n')) {
    const [id, type, size] = line.split(' ');
    if (!id || !type) continue;
    if (type !== 'blob') out.set(id, { data: null, size: 0, skipped: `not a file (${type})` });
    else if (Number(size) > maxBytes)
      out.set(id, { data: null, size: Number(size), skipped: `larger than ${Math.round(maxBytes / 1024)} KB` });
    else wanted.push(id);
  }
  const contents = wanted.length ? batch(root, '--batch', wanted) : Buffer.alloc(0);
  let at = 0;
  while (contents && at < contents.length) {
    const nl = contents.indexOf(0x0a, at);
    if (nl < 0) break;
    const [id, , size] = contents.subarray(at, nl).toString('utf8').split(' ');
    const n = Number(size);
    if (!id || !Number.isFinite(n)) break;
    out.set(id, { data: contents.subarray(nl + 1, nl + 1 + n), size: n, skipped: null });
    at = nl + 1 + n + 1;
  }
  for (const id of wanted) if (!out.has(id)) out.set(id, { data: null, size: 0, skipped: 'git could not read it' });
  return out;
}

function batch(root: string, mode: '--batch' | '--batch-check', ids: string[]): Buffer | null {
  const r = spawnSync('git', ['-c', 'core.fsmonitor=false', '-c', 'core.hooksPath=/dev/null', 'cat-file', mode], {
    cwd: root,
    input: `${ids.join('\n')}\n`,
    // As in run/git.ts: a replace ref would have a blob read as another one.
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', GIT_NO_REPLACE_OBJECTS: '1' },
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return r.error || r.status !== 0 ? null : r.stdout;
}
