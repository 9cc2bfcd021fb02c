/**
 * The run's trust state (the `trust` document) and the code fingerprints it is judged by:
 * - `codeState`: the tree object of the working tree (outside .loki/), exact; taken for verifications, council
 *   sessions and completion.
 * - `quickFingerprint`: HEAD plus the dirty paths with their sizes and modification times, cheap enough for every
 *   turn; used only to notice stagnation.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LokiConfig } from '../config/load.js';
import type { Checklist } from '../domain/checklist.js';
import type { Project } from '../project.js';
import { git, snapshotTree } from '../run/git.js';
import type { RunState } from '../run/records.js';
import type { Store } from '../store/store.js';
import { TRUST_FILE, TRUST_RECORD, emptyTrust, type TrustState } from './records.js';

export function readTrust(store: Store | undefined, runId: string): TrustState {
  const t = store?.records.read(TRUST_FILE, TRUST_RECORD);
  return t && t.runId === runId ? t : emptyTrust(runId);
}

export async function updateTrust<T>(
  project: Project,
  runId: string,
  change: (t: TrustState) => {
    next: TrustState;
    result: T;
    audit?: { action: string; data?: unknown; actor?: string };
  },
): Promise<T> {
  const store = project.openStore();
  const out = await store.mutate(
    () => {
      const c = change(readTrust(store, runId));
      store.records.write(TRUST_FILE, TRUST_RECORD, c.next);
      return c;
    },
    (c) =>
      c.audit && {
        action: c.audit.action,
        target: runId,
        data: c.audit.data,
        ...(c.audit.actor ? { actor: c.audit.actor } : {}),
      },
  );
  return out.result;
}

/** The exact code state: null outside a git repository (or when git cannot snapshot it). */
export function codeState(run: RunState, root: string): string | null {
  return run.git.repository ? snapshotTree(root) : null;
}

/** A cheap fingerprint of the working tree for stagnation tracking; null outside git. */
export function quickFingerprint(run: RunState, root: string): string | null {
  if (!run.git.repository) return null;
  // One git call: porcelain v2 with --branch names HEAD's commit (`# branch.oid`) before the changed paths.
  const status = git(
    root,
    ['status', '--porcelain=v2', '--branch', '-z', '--untracked-files=all', '--', '.', ':(exclude).loki'],
    { GIT_LITERAL_PATHSPECS: '0' },
  );
  if (!status.ok) return null;
  const h = crypto.createHash('sha256').update(status.out);
  for (const entry of status.out.split('\0')) {
    // v2 entries end with the path (after 8 fields for changes, 1 for untracked); headers start with "#".
    if (entry.startsWith('#') || !entry) continue;
    const fields = entry.split(' ');
    const file = entry.startsWith('?')
      ? entry.slice(2)
      : fields.slice(entry.startsWith('1') ? 8 : entry.startsWith('2') ? 9 : 10).join(' ');
    if (!file) continue;
    try {
      const st = fs.lstatSync(path.join(root, file), { bigint: true });
      h.update(`\0${file}\0${st.size}\0${st.mtimeNs}`);
    } catch {
      h.update(`\0${file}\0gone`);
    }
  }
  return h.digest('hex');
}

/** The settings a run is judged by; recorded at start, compared at completion. */
export function trustSettings(config: LokiConfig): string {
  return JSON.stringify({ checks: config.checks, council: config.council });
}

/** What the council judged of the checklist: ids, statuses, checks and notes (not check timestamps). */
export function checklistFingerprint(list: Checklist | undefined): string {
  const items = (list?.items ?? []).map((i) => [i.id, i.status, i.check, i.note]);
  return crypto.createHash('sha256').update(JSON.stringify(items)).digest('hex');
}
