/**
 * The `.loki/` store: the validated directory, its locks, its records and its audit log, and `mutate()`, the
 * one way state changes: take the lock, run the change, append the audit entry. `fn` is told when the lock was
 * taken over from a holder that died mid-change.
 *
 * On-disk layout (research/reliability-perf.md §A2.4, §A3.3): one file per record, so a write costs the same at
 * 100 and at 100k records.
 *   state/run.json          the run (phase, tier, iteration, spec, git baseline)
 *   sessions/<id>.json      one per agent session (heartbeat)
 *   queue/tasks/<id>.json   one per task; queue/changes.log tells other processes which ones changed
 *   spec/                   the copy of the spec the run was started from
 *   verify/<run>/<id>.json  one write-once record per loki_verify (v0001, v0002, ...)
 *   audit/log.jsonl         hash-chained audit log, audit/anchor.json its local anchor
 *   locks/                  lock files
 *   quarantine/             files that failed validation, moved aside
 *   logs/                   delivered HUMAN_INPUT directives
 *   PAUSE, STOP, HUMAN_INPUT.md, config.yaml   written by people
 */
import fs from 'node:fs';
import path from 'node:path';
import { AuditLog, externalAnchorName, type AnchorLocation } from '../audit/log.js';
import { LockManager } from './lock.js';
import { SafeDir, splitRelativePath } from './paths.js';
import { RecordIO } from './records.js';
import { sweepOrphanTemps } from './fsx.js';

export interface AuditNote {
  action: string;
  target?: string;
  data?: unknown;
  /** Who made the change, when not this process (the queue owner applying another process's request). */
  actor?: string;
}

export class Store {
  readonly project: SafeDir;
  readonly loki: SafeDir;
  readonly lockDir: SafeDir;
  readonly locks: LockManager;
  readonly records: RecordIO;
  readonly audit: AuditLog;
  /** Relative names `exists` has already validated. */
  private readonly checkedNames = new Set<string>();

  private constructor(project: SafeDir, loki: SafeDir, lokiHome: string, actor: string) {
    this.project = project;
    this.loki = loki;
    this.lockDir = loki.child('locks', true);
    this.locks = new LockManager(this.lockDir);
    this.records = new RecordIO(loki);
    this.audit = new AuditLog(loki, this.locks, externalAnchor(project.root, lokiHome), actor);
  }

  static open(projectRoot: string, lokiHome: string, actor: string): Store {
    const project = SafeDir.open(projectRoot);
    const loki = project.child('.loki', true);
    const store = new Store(project, loki, lokiHome, actor);
    for (const dir of ['state', 'sessions']) sweepOrphanTemps(loki, dir, 10 * 60_000);
    return store;
  }

  /**
   * Change state under `lock`, then record the change in the audit log. `fn` does the reads and writes; `note`
   * describes the result for the audit entry (return undefined when nothing changed).
   */
  async mutate<T>(lock: string, fn: (info: { recovered: boolean }) => T | Promise<T>, note: (result: T) => AuditNote | undefined): Promise<T> {
    return this.locks.withLock(lock, async (info) => {
      const result = await fn(info);
      const n = note(result);
      if (n) await this.audit.append(n.action, n.target, n.data);
      return result;
    });
  }

  /** True when `.loki/<rel>` exists as anything at all (used for the PAUSE/STOP markers). */
  exists(rel: string): boolean {
    if (!this.checkedNames.has(rel)) {
      splitRelativePath(rel);
      // The same few names are asked about on every tool call (markers, the rollback journal).
      if (this.checkedNames.size < 256) this.checkedNames.add(rel);
    }
    try {
      // No exception for the usual answer (absent): building one costs more than the lstat.
      return fs.lstatSync(path.join(this.loki.root, rel), { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false;
    }
  }

  close(): void {
    this.audit.close();
    this.locks.releaseAll();
  }
}

function externalAnchor(projectRoot: string, lokiHome: string): AnchorLocation | undefined {
  try {
    fs.mkdirSync(lokiHome, { recursive: true, mode: 0o700 });
    return { dir: SafeDir.open(lokiHome), rel: externalAnchorName(projectRoot), label: `the external anchor (${lokiHome}/anchors)` };
  } catch (err) {
    process.emitWarning(`loki: cannot use ${lokiHome} for the external audit anchor: ${(err as Error).message}`, { code: 'LOKI_HOME' });
    return undefined;
  }
}
