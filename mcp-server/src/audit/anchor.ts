/**
 * The external audit anchor's file, `$LOKI_HOME/anchors/<project>.json`: the audit log's entry count and head
 * hash, kept outside the project (audit/log.ts says what it catches and what it cannot).
 *
 * It is written after every commit, so a process keeps it open and rewrites it in place: one record of a fixed
 * size at offset 0, written whole by one write(2), which the kernel orders against other processes' writes of the
 * file. Replacing it through a temporary file and a rename took a fifth of a claim's time, and made every agent's
 * commit contend on one folder. A read, though, is not ordered against a write: one that meets a write half
 * done sees part of each record, so readers check what they read and read again (read's `holds`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Anchor, canonicalJson } from './chain.js';
import { makePrivateDir, projectKey } from '../home.js';

/** Room for `{"count":N,"head":"<64 hex>"}` with any count, padded with spaces, and a newline. */
const RECORD_BYTES = 128;
/** Reads of an anchor that does not hold, before it is taken as it is (a torn read does not last). */
const READS = 3;

export type AnchorRead = Anchor | 'missing' | 'unreadable';

export class AnchorFile {
  private path: string | undefined;
  private fd: number | undefined;
  readonly label: string;

  constructor(
    private readonly lokiHome: string,
    private readonly projectRoot: string,
  ) {
    this.label = `the external anchor (${lokiHome}/anchors)`;
  }

  /** Worked out on first use: a store opened only to read (the hooks) then never loads the hashing code. */
  get file(): string {
    return (this.path ??= externalAnchorFile(this.lokiHome, this.projectRoot));
  }

  /**
   * The anchor as the file holds it. `holds` says whether a parsed anchor agrees with the log: one that does not
   * is read again, up to three times in all, since a read that met another process's write sees half of each.
   */
  read(holds: (a: Anchor) => boolean): AnchorRead {
    let a: AnchorRead = 'missing';
    for (let i = 0; i < READS; i++) {
      a = readOnce(this.file);
      if (a === 'missing' || (a !== 'unreadable' && holds(a))) return a;
    }
    return a;
  }

  /** Rewrite the anchor in place; the file (and its folder) is made, 0600 in 0700 folders, when missing. */
  write(anchor: Anchor): void {
    const record = Buffer.from(`${canonicalJson(anchor).padEnd(RECORD_BYTES - 1)}\n`);
    let fd = this.fd;
    let st = fd === undefined ? undefined : fs.fstatSync(fd);
    // Removed or replaced since it was opened (nothing links to the open file): open the path again.
    if (st?.nlink === 0) st = this.close();
    if (fd === undefined || st === undefined) [fd, st] = this.open();
    fs.writeSync(fd, record, 0, record.length, 0);
    // A longer file (written by hand, or by an older loki-mode) would keep its tail.
    if (st.size > record.length) fs.ftruncateSync(fd, record.length);
  }

  close(): undefined {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    return undefined;
  }

  private open(again = false): [number, fs.Stats] {
    const dir = path.dirname(this.file);
    makePrivateDir(this.lokiHome, dir);
    let fd: number;
    try {
      // O_NOFOLLOW: a link planted at the anchor's name is never written through.
      const { O_RDWR, O_CREAT, O_NOFOLLOW } = fs.constants;
      fd = fs.openSync(this.file, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (again) throw err;
      // A link is replaced by a file of our own (as the rename of earlier versions did).
      if (code === 'ELOOP') fs.unlinkSync(this.file);
      // The folder was removed since this process made it: make it again, once.
      else if (code !== 'ENOENT' || !makePrivateDir(this.lokiHome, dir, true)) throw err;
      return this.open(true);
    }
    const st = fs.fstatSync(fd);
    if ((st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
    this.fd = fd;
    return [fd, st];
  }
}

function readOnce(file: string): AnchorRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const v = JSON.parse(text) as Anchor;
    if (!Number.isInteger(v.count) || typeof v.head !== 'string') return 'unreadable';
    return { count: v.count, head: v.head };
  } catch {
    return 'unreadable';
  }
}

/** The external anchor's path for a project: a digest of its canonical root under `$LOKI_HOME/anchors/`. */
export function externalAnchorFile(lokiHome: string, projectRoot: string): string {
  return path.join(lokiHome, 'anchors', `${projectKey(projectRoot)}.json`);
}
