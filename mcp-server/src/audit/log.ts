/**
 * The audit log file: `.loki/audit/log.jsonl`, appended under the `audit` lock with O_APPEND + fsync, and two
 * anchors recording its entry count and head hash: `.loki/audit/anchor.json` and one outside the project under
 * `$LOKI_HOME/anchors/`. An anchor may lag the log after a crash (it is written after the fsync'd append), so
 * verification requires each anchor to be a prefix of the log.
 *
 * Damage is never fatal to the run: a torn final line (a crash mid-append) is cut off and the chain continues;
 * a log whose tail cannot be read, or that is shorter than its anchors, is archived to `.loki/quarantine/` and a
 * new chain starts with an `audit.restart` entry naming why. `verify()` reports every restart as a break, so the
 * damage stays visible.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import {
  type Anchor,
  type AuditEntry,
  type AuditFields,
  type ChainBreak,
  GENESIS,
  canonicalJson,
  checkAnchor,
  makeEntry,
  serializeEntry,
  verifyChainText,
} from './chain.js';
import { fsyncAsync, openForAppend, readFileIfExists, writeAll, moveFile } from '../store/fsx.js';
import { faultPoint } from '../store/fault.js';
import { KeptFile } from '../store/kept-file.js';
import type { LockManager } from '../store/lock.js';
import type { SafeDir } from '../store/paths.js';

export const AUDIT_LOG = 'audit/log.jsonl';
export const LOCAL_ANCHOR = 'audit/anchor.json';
const ANCHOR_BYTES = 256;
const MAX_DATA_BYTES = 8 * 1024;
const TAIL_WINDOW = 64 * 1024;

export interface AnchorLocation {
  dir: SafeDir;
  rel: string;
  label: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  count: number;
  head: string;
  tornTail: boolean;
  anchors: { label: string; count: number | null; status: 'ok' | 'missing' | 'unreadable' | 'mismatch' }[];
  restarts: { index: number; reason: string }[];
  firstBreak?: ChainBreak;
}

interface Tail {
  ino: number;
  size: number;
  seq: number;
  hash: string;
}

export class AuditLog {
  private cachedTail: Tail | undefined;
  /** The log and the anchors stay open between appends (store/kept-file.ts). */
  private readonly logFile: KeptFile;
  private readonly anchorFiles = new Map<string, KeptFile>();
  private closed = false;

  constructor(
    private readonly loki: SafeDir,
    private readonly locks: LockManager,
    private readonly external: AnchorLocation | undefined,
    private readonly actor: string,
  ) {
    this.logFile = new KeptFile(loki, AUDIT_LOG, 'file', (dir, rel) => openForAppend(dir, rel).fd);
  }

  /**
   * Close the files kept open (Store.close). An append under way finishes on its descriptor; later ones (a
   * batch still settling at shutdown) open and close the files for themselves.
   */
  close(): void {
    this.closed = true;
    this.logFile.close();
    for (const f of this.anchorFiles.values()) f.close();
  }

  /** Append one entry for a mutation; returns it once it is on disk. */
  async append(action: string, target?: string, data?: unknown): Promise<AuditEntry> {
    return (await this.appendAll([{ action, target, data }]))[0]!;
  }

  /** Append entries in order under one lock and one fsync (a change that made several); returns them once on disk. */
  async appendAll(notes: readonly { action: string; target?: string | undefined; data?: unknown; actor?: string | undefined }[]): Promise<AuditEntry[]> {
    if (notes.length === 0) return [];
    return this.locks.withLock('audit', () => {
      const ts = new Date().toISOString();
      return this.appendLocked(notes.map((n) => ({ ts, actor: n.actor ?? this.actor, action: n.action, target: n.target, data: boundData(n.data) })));
    });
  }

  /**
   * Chain and write `all` with one write and one fsync (on the thread pool: the process keeps serving while the
   * disk works), then update the anchors once.
   */
  private async appendLocked(all: readonly AuditFields[]): Promise<AuditEntry[]> {
    if (all.length === 0) return [];
    return this.logFile.use(async (target) => {
      const cached = this.cachedTail;
      const tail = cached && cached.ino === target.ino && cached.size === target.size ? cached : this.readTail(target.fd, target.ino, target.size);
      if (tail === 'restart') {
        const first = this.restartAndAppend(all[0]!);
        return [first, ...(await this.appendLocked(all.slice(1)))];
      }
      const entries: AuditEntry[] = [];
      let head: { hash: string; seq: number } = tail;
      for (const fields of all) {
        const entry = makeEntry(head.hash, head.seq + 1, fields);
        entries.push(entry);
        head = entry;
      }
      const bytes = Buffer.from(entries.map(serializeEntry).join(''), 'utf8');
      faultPoint('audit-before-append');
      writeAll(target.fd, bytes);
      await fsyncAsync(target.fd);
      faultPoint('audit-after-append');
      this.cachedTail = { ino: tail.ino, size: tail.size + bytes.length, seq: head.seq, hash: head.hash };
      this.writeAnchors({ count: head.seq + 1, head: head.hash });
      return entries;
    });
  }

  /** Find the last complete entry; cut a torn final line; detect a log that is shorter than its anchors. */
  private readTail(fd: number, ino: number, size: number): Tail | 'restart' {
    let tail: Tail = { ino, size: 0, seq: -1, hash: GENESIS };
    if (size > 0) {
      const window = Math.min(size, TAIL_WINDOW);
      const offset = size - window;
      const buf = Buffer.alloc(window);
      fs.readSync(fd, buf, 0, window, offset);
      let validSize = size;
      const lastNewline = buf.lastIndexOf(0x0a);
      if (lastNewline !== window - 1) {
        if (lastNewline < 0 && offset > 0) return 'restart';
        validSize = offset + lastNewline + 1;
        fs.ftruncateSync(fd, validSize);
        process.emitWarning(`loki: cut a torn final line from ${AUDIT_LOG} (a crash during an append)`, { code: 'LOKI_AUDIT_TORN' });
      }
      if (validSize > 0) {
        const end = validSize - offset - 1;
        const start = buf.lastIndexOf(0x0a, end - 1) + 1;
        if (start === 0 && offset > 0) return 'restart';
        try {
          const e = JSON.parse(buf.subarray(start, end).toString('utf8')) as AuditEntry;
          if (!Number.isInteger(e.seq) || typeof e.hash !== 'string') return 'restart';
          tail = { ino, size: validSize, seq: e.seq, hash: e.hash };
        } catch {
          return 'restart';
        }
      }
    }
    for (const anchor of this.readAnchors()) {
      if (anchor.value && anchor.value.count > tail.seq + 1) return 'restart';
    }
    return tail;
  }

  /** Archive the damaged log and start a new chain whose first entry says why. */
  private restartAndAppend(fields: AuditFields): AuditEntry {
    const anchors = this.readAnchors();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').toLowerCase();
    const archived = `quarantine/audit-${stamp}-${crypto.randomBytes(3).toString('hex')}.jsonl`;
    const moved = moveFile(this.loki, AUDIT_LOG, archived);
    const reason = anchors.some((a) => a.value && a.value.count > 0)
      ? `the log could not be continued: it was damaged, truncated or removed (anchors recorded ${anchors
          .map((a) => `${a.label}: ${a.value ? a.value.count : a.status}`)
          .join(', ')})`
      : 'the log tail could not be read';
    this.cachedTail = undefined;
    const restart = makeEntry(GENESIS, 0, {
      ts: fields.ts,
      actor: this.actor,
      action: 'audit.restart',
      data: { reason, archived: moved ? archived : null },
    });
    const target = this.logFile.get();
    const first = makeEntry(restart.hash, 1, fields);
    const bytes = Buffer.from(serializeEntry(restart) + serializeEntry(first), 'utf8');
    writeAll(target.fd, bytes);
    fs.fsyncSync(target.fd);
    this.cachedTail = { ino: target.ino, size: target.size + bytes.length, seq: 1, hash: first.hash };
    this.writeAnchors({ count: 2, head: first.hash });
    process.emitWarning(`loki: audit log restarted: ${reason}`, { code: 'LOKI_AUDIT_RESTART' });
    return first;
  }

  private anchorLocations(): AnchorLocation[] {
    const local: AnchorLocation = { dir: this.loki, rel: LOCAL_ANCHOR, label: 'the local anchor (.loki/audit/anchor.json)' };
    return this.external ? [local, this.external] : [local];
  }

  private readAnchors(): { label: string; value: Anchor | undefined; status: 'ok' | 'missing' | 'unreadable' }[] {
    return this.anchorLocations().map((loc) => {
      try {
        const buf = readFileIfExists(loc.dir, loc.rel, ANCHOR_BYTES * 4);
        if (!buf) return { label: loc.label, value: undefined, status: 'missing' as const };
        const v = JSON.parse(buf.toString('utf8')) as Anchor;
        if (!Number.isInteger(v.count) || typeof v.head !== 'string') throw new Error('bad anchor');
        return { label: loc.label, value: { count: v.count, head: v.head }, status: 'ok' as const };
      } catch {
        return { label: loc.label, value: undefined, status: 'unreadable' as const };
      }
    });
  }

  /** Write the anchors in place: one fixed-size write each, no rename, so an append stays cheap. */
  private writeAnchors(anchor: Anchor): void {
    const text = canonicalJson({ count: anchor.count, head: anchor.head });
    const buf = Buffer.alloc(ANCHOR_BYTES, ' ');
    buf.write(text, 0, 'utf8');
    buf[ANCHOR_BYTES - 1] = 0x0a;
    for (const loc of this.anchorLocations()) {
      let file = this.anchorFiles.get(loc.label);
      if (!file) {
        file = new KeptFile(loc.dir, loc.rel, 'file', () => openAnchor(loc));
        if (this.closed) file.close();
        this.anchorFiles.set(loc.label, file);
      }
      try {
        writeAll(file.get().fd, buf, 0);
      } catch (err) {
        file.letGo();
        process.emitWarning(`loki: could not update ${loc.label}: ${(err as Error).message}`, { code: 'LOKI_AUDIT_ANCHOR' });
      }
    }
  }

  /** Verify the whole log against both anchors. Read-only. */
  verify(): AuditVerifyResult {
    const buf = readFileIfExists(this.loki, AUDIT_LOG, 1024 * 1024 * 1024) ?? Buffer.alloc(0);
    const hashes: string[] = [];
    const restarts: { index: number; reason: string }[] = [];
    const report = verifyChainText(buf.toString('utf8'), (e) => {
      hashes.push(e.hash);
      if (e.action === 'audit.restart') {
        const d = e.data as { reason?: string; archived?: string | null } | undefined;
        restarts.push({ index: e.seq, reason: `${d?.reason ?? 'restarted'}${d?.archived ? ` (damaged log kept at .loki/${d.archived})` : ''}` });
      }
    });
    let firstBreak = report.firstBreak;
    const anchors: AuditVerifyResult['anchors'] = [];
    for (const a of this.readAnchors()) {
      if (!a.value) {
        anchors.push({ label: a.label, count: null, status: a.status });
        if (a.status === 'unreadable' && !firstBreak) firstBreak = { index: report.count, reason: `${a.label} is unreadable` };
        continue;
      }
      const mismatch = report.ok ? checkAnchor(report, a.value, (i) => hashes[i], a.label) : undefined;
      anchors.push({ label: a.label, count: a.value.count, status: mismatch ? 'mismatch' : 'ok' });
      if (mismatch && !firstBreak) firstBreak = mismatch;
    }
    if (!firstBreak && restarts.length > 0) {
      firstBreak = { index: restarts[0]!.index, reason: `the chain was restarted: ${restarts[0]!.reason}` };
    }
    const result: AuditVerifyResult = { ok: !firstBreak, count: report.count, head: report.head, tornTail: report.tornTail, anchors, restarts };
    if (firstBreak) result.firstBreak = firstBreak;
    return result;
  }
}

function openAnchor(loc: AnchorLocation): number {
  const { absolute } = loc.dir.resolve(loc.rel, { leaf: 'file', allowMissing: true, createParents: true });
  const fd = fs.openSync(absolute, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.nlink > 1) {
    fs.closeSync(fd);
    throw new Error(`${loc.label} is not a plain file`);
  }
  loc.dir.assertDescriptorInside(fd, loc.rel);
  return fd;
}

/** Keep entries small: large data is replaced by its size and digest. */
function boundData(data: unknown): unknown {
  if (data === undefined) return undefined;
  const text = canonicalJson(data);
  if (Buffer.byteLength(text, 'utf8') <= MAX_DATA_BYTES) return JSON.parse(text);
  return { truncated: true, bytes: Buffer.byteLength(text, 'utf8'), sha256: crypto.createHash('sha256').update(text).digest('hex') };
}

/** The external anchor's file name for a project: a digest of its canonical root, so it never collides. */
export function externalAnchorName(projectRoot: string): string {
  return `anchors/${crypto.createHash('sha256').update(projectRoot).digest('hex').slice(0, 32)}.json`;
}

