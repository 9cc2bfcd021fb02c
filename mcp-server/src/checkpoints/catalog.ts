/**
 * The set of checkpoints on disk: listing and reading records (a damaged one is reported, never quarantined or
 * dropped silently), publishing a new one atomically (built in a hidden folder, then renamed into place), and
 * retention (removing a checkpoint's folder and git ref, then the stored state files nobody references).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { selectPrune, stateDigestText } from '../domain/checkpoints.js';
import { deleteRef } from '../run/git.js';
import { faultPoint } from '../store/fault.js';
import { listNames, moveDirectory, readFileIfExists, removeTree, writeFileAtomic } from '../store/fsx.js';
import { isNotFound } from '../store/paths.js';
import { decodeRecord, encodeRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import {
  CHECKPOINTS_DIR,
  CHECKPOINT_RECORD,
  ID_RE,
  MANIFEST_RECORD,
  checkpointRef,
  manifestFile,
  recordFile,
  type CheckpointRecord,
  type StateManifest,
  type StoredEntry,
} from './records.js';
import { removeStorage, storageOf, sweepPacks } from './packs.js';

export interface Damaged {
  id: string;
  seq: number;
  problem: string;
}

export interface Catalog {
  /** Readable checkpoints, oldest first. */
  records: CheckpointRecord[];
  damaged: Damaged[];
  /** The highest sequence number in use (damaged folders included), so ids are never reused. */
  maxSeq: number;
}

export function readCatalog(store: Store): Catalog {
  const records: CheckpointRecord[] = [];
  const damaged: Damaged[] = [];
  let maxSeq = 0;
  for (const name of listNames(store.loki, CHECKPOINTS_DIR)) {
    const m = ID_RE.exec(name);
    if (!m) continue;
    const seq = Number(m[1]);
    maxSeq = Math.max(maxSeq, seq);
    const r = readRecord(store, name);
    if ('record' in r) records.push(r.record);
    else damaged.push({ id: name, seq, problem: r.problem });
  }
  records.sort((a, b) => a.seq - b.seq);
  return { records, damaged, maxSeq };
}

/** One checkpoint's record, or why it cannot be used. */
export function readRecord(store: Store, id: string): { record: CheckpointRecord } | { problem: string } {
  let text: string | undefined;
  try {
    text = readFileIfExists(store.loki, recordFile(id), 1024 * 1024)?.toString('utf8');
  } catch (err) {
    return { problem: `checkpoint.json cannot be read: ${(err as Error).message}` };
  }
  if (text === undefined) return { problem: 'checkpoint.json is missing' };
  const decoded = decodeRecord(CHECKPOINT_RECORD, text, recordFile(id));
  if ('problem' in decoded) return { problem: `checkpoint.json is damaged: ${decoded.problem}` };
  if (decoded.value.id !== id) return { problem: `checkpoint.json names ${decoded.value.id}, not ${id}` };
  return { record: decoded.value };
}

/** Manifests never change once written: keep them per process, keyed by the file's identity too. */
const manifestCache = new Map<string, { entries: StoredEntry[]; scannedAt: number | undefined }>();

/** The state manifest of a checkpoint, checked against the digest in its record. */
export function readManifest(store: Store, record: CheckpointRecord): { entries: StoredEntry[]; scannedAt: number | undefined } | { problem: string } {
  let text: string | undefined;
  let key = '';
  try {
    const st = fs.lstatSync(path.join(store.loki.root, manifestFile(record.id)));
    key = `${store.loki.root}\0${record.id}\0${record.state.digest}\0${st.ino}:${st.size}:${st.mtimeMs}`;
    const hit = manifestCache.get(key);
    if (hit) return hit;
    text = readFileIfExists(store.loki, manifestFile(record.id), 256 * 1024 * 1024)?.toString('utf8');
  } catch (err) {
    if (!isNotFound(err)) return { problem: `state.json cannot be read: ${(err as Error).message}` };
  }
  if (text === undefined) return { problem: 'state.json is missing' };
  const decoded = decodeRecord(MANIFEST_RECORD, text, manifestFile(record.id));
  if ('problem' in decoded) return { problem: `state.json is damaged: ${decoded.problem}` };
  const entries = decoded.value.files;
  const digest = crypto.createHash('sha256').update(stateDigestText(entries)).digest('hex');
  if (digest !== record.state.digest) return { problem: 'state.json does not match the digest in checkpoint.json' };
  const manifest = { entries, scannedAt: decoded.value.scannedAt };
  manifestCache.set(key, manifest);
  return manifest;
}

/**
 * Publish a checkpoint: manifest and record are written into a hidden folder, which is then renamed to
 * `checkpoints/<id>/`. A crash before the rename leaves only the hidden folder (removed by the next prune).
 */
export function publish(store: Store, record: CheckpointRecord, manifest: StateManifest): void {
  const staging = `${CHECKPOINTS_DIR}/.new-${record.id}-${crypto.randomBytes(4).toString('hex')}`;
  writeFileAtomic(store.loki, `${staging}/state.json`, encodeRecord(MANIFEST_RECORD, manifest));
  writeFileAtomic(store.loki, `${staging}/checkpoint.json`, encodeRecord(CHECKPOINT_RECORD, record));
  faultPoint('checkpoint-before-publish');
  moveDirectory(store.loki, staging, `${CHECKPOINTS_DIR}/${record.id}`);
}

/**
 * Apply retention (keep the newest `keep` automatic and `keep` pre-rollback checkpoints; manual ones stay),
 * sweep leftovers of interrupted work, and remove stored state files no remaining checkpoint references.
 * Runs under the checkpoints lock. Returns the ids removed.
 */
export function prune(store: Store, projectRoot: string, keep: number): string[] {
  for (const name of listNames(store.loki, CHECKPOINTS_DIR)) {
    if (name.startsWith('.new-') || name.startsWith('.trash-')) removeTreeQuietly(store, `${CHECKPOINTS_DIR}/${name}`);
  }
  const catalog = readCatalog(store);
  const doomed = new Set(selectPrune(catalog.records, keep));
  if (doomed.size === 0) return [];
  const packs = new Set<string>();
  const loose = new Set<string>();
  for (const r of catalog.records) {
    if (!doomed.has(r.id)) continue;
    const m = readManifest(store, r);
    if ('entries' in m) {
      const s = storageOf(m.entries);
      for (const p of s.packs) packs.add(p);
      for (const sha of s.loose) loose.add(sha);
    }
    deleteRef(projectRoot, checkpointRef(r.id));
    removeTreeQuietly(store, `${CHECKPOINTS_DIR}/${r.id}`);
  }
  const referenced = new Set<string>();
  for (const r of catalog.records) {
    if (doomed.has(r.id)) continue;
    const m = readManifest(store, r);
    // A remaining checkpoint whose manifest cannot be read keeps everything (it may still be repaired).
    if (!('entries' in m)) return [...doomed];
    const s = storageOf(m.entries);
    for (const p of s.packs) referenced.add(p);
    for (const sha of s.loose) loose.delete(sha);
  }
  // Packs no remaining checkpoint names: the removed ones', and any a crash left before its checkpoint was
  // published (packs are written under the checkpoints lock, held here). While a damaged checkpoint may still be
  // repaired, only the removed ones' go.
  const unnamed = catalog.damaged.length === 0 ? sweepPacks(store) : packs;
  removeStorage(store, { packs: [...unnamed].filter((p) => !referenced.has(p)), loose });
  return [...doomed];
}

function removeTreeQuietly(store: Store, rel: string): void {
  try {
    removeTree(store.loki, rel);
  } catch (err) {
    process.emitWarning(`loki: could not remove .loki/${rel}: ${(err as Error).message}`, { code: 'LOKI_CHECKPOINT_PRUNE' });
  }
}
