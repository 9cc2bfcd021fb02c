/**
 * A run's held-out set, kept outside the project until completion is claimed.
 *
 * Which checklist items are held out must not be readable anywhere under the project, where the agent works and
 * reads. The set is drawn at random when the run starts (a salt per run orders the items, domain/checklist.ts) and
 * kept in `$LOKI_HOME/held-out/<project key>/<run>.json`, 0600. The checklist record in `.loki/loki.db` keeps only
 * the salted digest of the set and its size, bound into the audit chain with the record, so neither the record
 * nor the chain names an item. At the reveal the set is read back, checked against its digest and written into
 * the record (from then on it is no secret). The file is kept until the run is accepted: a rollback to a
 * checkpoint from before the reveal brings back a record that does not name the set.
 *
 * A set that is missing or does not match its digest is not used: every spec item is then judged as held out,
 * which costs whoever removed it more than it could gain, and the receipt says so. The limit (docs/trust.md):
 * the agent runs as the same user and can read `$LOKI_HOME`; the set is kept from what the agent reads in the
 * course of its work, not from a process that goes looking for it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { selectHeldOut, type HeldOutSetRef } from '../domain/checklist.js';
import { projectKey, replacePrivateFile } from '../home.js';

interface KeptSet {
  runId: string;
  salt: string;
  ids: string[];
}

const MAX_SET_BYTES = 64 * 1024;

export function heldOutFile(lokiHome: string, projectRoot: string, runId: string): string {
  return path.join(lokiHome, 'held-out', projectKey(projectRoot), `${runId}.json`);
}

function digestOf(set: KeptSet): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([set.runId, set.salt, [...set.ids].sort()]))
    .digest('hex');
}

/**
 * Choose the run's held-out ids among `ids` and keep them outside the project. The salt is random unless
 * LOKI_HELD_OUT_SEED is set (tests and reproducible demos), which the record and the receipt then say.
 */
export function keepHeldOut(
  lokiHome: string,
  projectRoot: string,
  runId: string,
  ids: readonly string[],
  env: NodeJS.ProcessEnv,
): { held: Set<string>; ref: HeldOutSetRef } {
  const seed = env.LOKI_HELD_OUT_SEED?.trim() || undefined;
  const salt = seed ?? crypto.randomBytes(16).toString('hex');
  const set: KeptSet = { runId, salt, ids: selectHeldOut(ids, salt) };
  const ref: HeldOutSetRef = { digest: digestOf(set), count: set.ids.length, ...(seed ? { seeded: true } : {}) };
  if (set.ids.length > 0)
    replacePrivateFile(lokiHome, heldOutFile(lokiHome, projectRoot, runId), `${JSON.stringify(set)}\n`);
  return { held: new Set(set.ids), ref };
}

/** The kept set, checked against the digest the record holds; or why it cannot be used. */
export function loadHeldOut(
  lokiHome: string,
  projectRoot: string,
  runId: string,
  ref: HeldOutSetRef,
): { held: Set<string> } | { lost: string } {
  if (ref.count === 0) return { held: new Set() };
  const file = heldOutFile(lokiHome, projectRoot, runId);
  let set: KeptSet;
  try {
    const text = fs.readFileSync(file, 'utf8');
    if (text.length > MAX_SET_BYTES) return { lost: `too large to be the set (${file})` };
    set = JSON.parse(text) as KeptSet;
  } catch (err) {
    return {
      lost:
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? `missing (${file}): it was removed, or $LOKI_HOME changed during the run`
          : `unreadable (${file})`,
    };
  }
  const wellFormed =
    set &&
    set.runId === runId &&
    typeof set.salt === 'string' &&
    Array.isArray(set.ids) &&
    set.ids.every((id) => typeof id === 'string');
  if (!wellFormed || digestOf(set) !== ref.digest || set.ids.length !== ref.count)
    return { lost: `changed outside the server (${file}): it no longer matches the digest the checklist record holds` };
  return { held: new Set(set.ids) };
}

/** Once the run is accepted the set is no longer needed. */
export function dropHeldOut(lokiHome: string, projectRoot: string, runId: string): void {
  fs.rmSync(heldOutFile(lokiHome, projectRoot, runId), { force: true });
}
