/**
 * Where checkpoints keep the contents of captured state files. A checkpoint writes every content the newest
 * checkpoint does not already hold into one new pack, `checkpoints/objects/packs/<sha256 of the pack>.pack`
 * (the contents one after another, nothing else), and its manifest says where each file's content is: pack and
 * offset (size and sha256 are in the entry). One file and one fsync per checkpoint, however many task files
 * changed: eight agents draining a queue change hundreds between two checkpoints, and creating a file costs far
 * more than writing a kilobyte. Contents are verified against their sha256 on every read.
 *
 * An unchanged content keeps pointing into the pack that first stored it, unless less than half of that pack is
 * still referenced by the new checkpoint: then its live contents are copied into the new pack, so the packs kept
 * alive by the retained checkpoints stay within twice the state size each. Manifests written before packs name
 * loose copies (`objects/<aa>/<rest of sha256>`), which are still read, reused and pruned.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { StateEntry } from '../domain/checkpoints.js';
import { fsyncDir, listNames, readFileIfExists, readTail, removeFile, sweepOrphanTemps, writeFileAtomic } from '../store/fsx.js';
import { PathError } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { CHECKPOINTS_DIR, blobFile, type StoredEntry } from './records.js';
import type { Identity, ScanBase } from './state.js';

const MAX_LOOSE_BYTES = 64 * 1024 * 1024;
const OBJECTS_DIR = `${CHECKPOINTS_DIR}/objects`;
const PACKS_DIR = `${OBJECTS_DIR}/packs`;
export const packFile = (name: string) => `${PACKS_DIR}/${name}.pack`;

const sha256Of = (data: Buffer): string => crypto.createHash('sha256').update(data).digest('hex');

/** Where a content is stored: in a pack at an offset, or as a loose copy (older checkpoints). */
type Location = { pack: string; offset: number; size: number } | { loose: true; size: number };

/**
 * The contents the newest checkpoint holds, by sha256, checked to be present (packs long enough, loose copies
 * there), and its files by path as of `scannedAt` (the start of its scan).
 */
export class StoredContents implements ScanBase {
  private constructor(
    private readonly where: Map<string, Location>,
    private readonly packSizes: Map<string, number>,
    private readonly byPath: Map<string, StoredEntry>,
    readonly scannedAt: number | undefined,
  ) {}

  static none(): StoredContents {
    return new StoredContents(new Map(), new Map(), new Map(), undefined);
  }

  /** From the newest checkpoint's manifest: each pack is looked at once, each loose copy once. */
  static of(store: Store, entries: readonly StoredEntry[], scannedAt: number | undefined): StoredContents {
    const where = new Map<string, Location>();
    const packSizes = new Map<string, number>();
    for (const e of entries) {
      if (where.has(e.sha256)) continue;
      if (e.pack !== undefined && e.offset !== undefined) {
        let size = packSizes.get(e.pack);
        if (size === undefined) packSizes.set(e.pack, (size = fileSize(store, packFile(e.pack)) ?? -1));
        if (e.offset + e.size <= size) where.set(e.sha256, { pack: e.pack, offset: e.offset, size: e.size });
      } else if (fileSize(store, blobFile(e.sha256)) === e.size) {
        where.set(e.sha256, { loose: true, size: e.size });
      }
    }
    return new StoredContents(where, packSizes, new Map(entries.map((e) => [e.path, e])), scannedAt);
  }

  has(sha: string): boolean {
    return this.where.has(sha);
  }

  previous(rel: string): StoredEntry | undefined {
    return this.byPath.get(rel);
  }

  /**
   * Store what `entries` (a scan) needs: contents read by the scan are in `contents`; any other one is stored
   * here already. Writes at most one pack (durably) and returns the manifest entries.
   */
  store(store: Store, entries: readonly StateEntry[], contents: ReadonlyMap<string, Buffer>, identities: ReadonlyMap<string, Identity>): StoredEntry[] {
    const copy = this.packsToCopy(entries);
    const located = new Map<string, { pack: string; offset: number } | null>();
    const fresh: Buffer[] = [];
    let offset = 0;
    const placed = new Map<string, number>();
    for (const e of entries) {
      if (located.has(e.sha256) || placed.has(e.sha256)) continue;
      const at = this.where.get(e.sha256);
      if (at && !('pack' in at && copy.has(at.pack))) {
        located.set(e.sha256, 'pack' in at ? { pack: at.pack, offset: at.offset } : null);
        continue;
      }
      const data = contents.get(e.sha256) ?? (at ? (this.read(store, e.sha256) ?? stillInFile(store, e)) : undefined);
      if (!data) throw new Error(`the stored copy of .loki/${e.path} is damaged and the file has changed since; the next checkpoint reads it again`);
      placed.set(e.sha256, offset);
      fresh.push(data);
      offset += data.length;
    }
    if (fresh.length > 0) {
      const data = Buffer.concat(fresh, offset);
      const name = sha256Of(data);
      // The same pack may be there already (a retry after a crash); its folder entries are made durable either way.
      if (fileSize(store, packFile(name)) !== data.length) writeFileAtomic(store.loki, packFile(name), data, { deferDirSync: true });
      fsyncDir(path.join(store.loki.root, PACKS_DIR));
      fsyncDir(path.join(store.loki.root, OBJECTS_DIR));
      for (const [sha, at] of placed) located.set(sha, { pack: name, offset: at });
    }
    return entries.map((e) => {
      const at = located.get(e.sha256);
      const id = identities.get(e.path);
      return { ...e, ...(at ? { pack: at.pack, offset: at.offset } : {}), ...(id ? { ino: id.ino, mtimeMs: id.mtimeMs, ctimeMs: id.ctimeMs } : {}) };
    });
  }

  /** Packs less than half of which `entries` would still reference: their live contents move to the new pack. */
  private packsToCopy(entries: readonly StateEntry[]): Set<string> {
    const live = new Map<string, number>();
    const counted = new Set<string>();
    for (const e of entries) {
      const at = this.where.get(e.sha256);
      if (!at || !('pack' in at) || counted.has(e.sha256)) continue;
      counted.add(e.sha256);
      live.set(at.pack, (live.get(at.pack) ?? 0) + at.size);
    }
    const copy = new Set<string>();
    for (const [pack, bytes] of live) if (bytes * 2 < (this.packSizes.get(pack) ?? 0)) copy.add(pack);
    return copy;
  }

  private read(store: Store, sha: string): Buffer | undefined {
    const at = this.where.get(sha)!;
    return readStored(store, 'pack' in at ? { sha256: sha, size: at.size, pack: at.pack, offset: at.offset } : { sha256: sha, size: at.size });
  }
}

/**
 * The content of a captured file read from the file itself, if it still holds exactly that content (a stored
 * copy to be moved turned out damaged; the file usually has not changed since).
 */
function stillInFile(store: Store, e: StateEntry): Buffer | undefined {
  try {
    const data = readFileIfExists(store.loki, e.path, Math.max(e.size, 1), true);
    return data && sha256Of(data) === e.sha256 ? data : undefined;
  } catch {
    return undefined;
  }
}

/** A stored content, checked against its sha256; undefined when it is missing or damaged. */
export function readStored(store: Store, e: Pick<StoredEntry, 'sha256' | 'size' | 'pack' | 'offset'>): Buffer | undefined {
  let data: Buffer | undefined;
  if (e.pack !== undefined && e.offset !== undefined) {
    const tail = readTail(store.loki, packFile(e.pack), e.offset, e.size);
    data = tail && tail.data.length === e.size ? tail.data : undefined;
  } else {
    data = readFileIfExists(store.loki, blobFile(e.sha256), MAX_LOOSE_BYTES);
  }
  return data && sha256Of(data) === e.sha256 ? data : undefined;
}

/** Where a manifest's contents are: pack names and loose copies (by sha256). */
export function storageOf(entries: readonly StoredEntry[]): { packs: Set<string>; loose: Set<string> } {
  const packs = new Set<string>();
  const loose = new Set<string>();
  for (const e of entries) {
    if (e.pack !== undefined) packs.add(e.pack);
    else loose.add(e.sha256);
  }
  return { packs, loose };
}

/** Remove stored contents nobody references any more. */
export function removeStorage(store: Store, doomed: { packs: Iterable<string>; loose: Iterable<string> }): void {
  for (const name of doomed.packs) removeFile(store.loki, packFile(name), false);
  for (const sha of doomed.loose) removeFile(store.loki, blobFile(sha), false);
}

/** The packs on disk (by name), after removing temp files a crash left while writing one. */
export function sweepPacks(store: Store): Set<string> {
  sweepOrphanTemps(store.loki, PACKS_DIR, 60_000);
  const names = new Set<string>();
  for (const file of listNames(store.loki, PACKS_DIR)) {
    const m = /^([0-9a-f]{64})\.pack$/.exec(file);
    if (m) names.add(m[1]!);
  }
  return names;
}

function fileSize(store: Store, rel: string): number | undefined {
  try {
    const st = store.loki.resolve(rel, { leaf: 'file' }).stat!;
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if (err instanceof PathError) return undefined;
    throw err;
  }
}
