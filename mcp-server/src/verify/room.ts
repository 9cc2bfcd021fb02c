/**
 * The clean room a verification runs its checks in: a private temporary folder holding exactly the code
 * snapshot being verified (the git tree the record names), nothing else. Ignored files, `.loki/`, files the
 * agent swaps while the checks run and anything else outside the snapshot cannot change the outcome, and the
 * code the receipt records is the code that was checked.
 *
 * Dependency folders (node_modules, Python virtual environments) are not in the snapshot and are too large to
 * copy: they are linked from the project. A check that writes into them writes into the project's; the record
 * lists which were linked (trust.md says what that leaves open).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { git } from '../run/git.js';
import { readBlobs } from './gitfacts.js';

/** Ignored folders the checks may need, linked into the room at the same place when the project has them. */
const DEPENDENCY_DIRS = new Set(['node_modules', '.venv', 'venv']);
/** How deep to look for them (workspaces keep node_modules in package folders). */
const MAX_DEPTH = 3;

export interface CleanRoom {
  /** The folder the checks run in. */
  dir: string;
  /** Dependency folders linked from the project, relative paths. */
  linked: string[];
  /** A private folder for report files, outside the room (the checks' own files never mix with the server's). */
  reports: string;
  close(): void;
}

/** Write `tree` into a new private folder and link the project's dependency folders into it. */
export function openCleanRoom(root: string, tree: string): CleanRoom {
  // mkdtemp creates 0700 folders: another local user cannot read the code or plant files in the room. The reports
  // get a folder of their own, not one the checks can find at ../reports.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-verify-'));
  const reports = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-reports-'));
  const close = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(reports, { recursive: true, force: true });
  };
  try {
    writeTree(root, tree, dir);
    const linked = linkDependencies(root, dir);
    return { dir, linked, reports, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** Blobs read per batch while writing the room (bounds the memory a large repository takes). */
const BLOBS_PER_BATCH = 2000;

/**
 * Write every file of `tree` under `dir` from the blobs themselves. Not `git checkout-index`: that applies the
 * smudge filters and attributes of .git/config and .git/info/attributes, which the agent controls, so the room
 * would hold other bytes than the tree the record names.
 */
function writeTree(root: string, tree: string, dir: string): void {
  const listing = git(root, ['ls-tree', '-r', '-z', '--full-tree', tree]);
  if (!listing.ok) throw new Error(`git ls-tree failed: ${listing.err}`);
  const entries = listing.out
    .split('\0')
    .filter(Boolean)
    .map((line) => {
      const tab = line.indexOf('\t');
      const [mode, type, id] = line.slice(0, tab).split(' ') as [string, string, string];
      return { mode, type, id, file: line.slice(tab + 1) };
    });
  const blobs = entries.filter((e) => e.type === 'blob');
  for (let i = 0; i < blobs.length; i += BLOBS_PER_BATCH) {
    const batch = blobs.slice(i, i + BLOBS_PER_BATCH);
    const contents = readBlobs(
      root,
      batch.map((b) => b.id),
      Number.MAX_SAFE_INTEGER,
    );
    for (const b of batch) {
      const data = contents.get(b.id)?.data;
      if (!data) throw new Error(`git could not read ${b.file} of the snapshot`);
      const target = path.join(dir, b.file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      if (b.mode === '120000') fs.symlinkSync(data.toString('utf8'), target);
      else fs.writeFileSync(target, data, { mode: b.mode === '100755' ? 0o755 : 0o644 });
    }
  }
  // Submodules (commits in the tree) are left as empty folders, as a fresh clone without --recurse has them.
  for (const e of entries) if (e.type === 'commit') fs.mkdirSync(path.join(dir, e.file), { recursive: true });
}

function linkDependencies(root: string, dir: string): string[] {
  // Ignored folders only, as git lists them (one entry per folder): a tracked node_modules is in the snapshot.
  const r = git(root, ['ls-files', '-z', '--others', '--ignored', '--exclude-standard', '--directory']);
  if (!r.ok) return [];
  const linked: string[] = [];
  for (const entry of r.out.split('\0')) {
    const rel = entry.replace(/\/$/, '');
    const parts = rel.split('/');
    if (parts.length > MAX_DEPTH || !DEPENDENCY_DIRS.has(parts.at(-1)!) || parts.includes('.loki')) continue;
    const parent = path.join(dir, ...parts.slice(0, -1));
    // Only where the snapshot has the folder the dependencies belong to, and only folders (a node_modules that
    // is itself a link, as some setups make it, is linked to where it points).
    if (!fs.existsSync(parent)) continue;
    const source = path.join(root, ...parts);
    let target: string;
    try {
      target = fs.realpathSync(source);
      if (!fs.statSync(target).isDirectory()) continue;
    } catch {
      continue;
    }
    fs.symlinkSync(target, path.join(parent, parts.at(-1)!), 'dir');
    linked.push(rel);
  }
  return linked;
}
