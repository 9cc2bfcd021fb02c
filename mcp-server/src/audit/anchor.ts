/**
 * The external audit anchor's file, `$LOKI_HOME/anchors/<project>.json`: the audit log's entry count and head
 * hash, kept outside the project (audit/log.ts says what it catches and what it cannot).
 *
 * It is written after every commit, so a process keeps it open and rewrites it in place: one record of a fixed
 * size at offset 0, written whole by one write(2), which the kernel orders against other processes' writes of the
 * file. Replacing it through a temporary file and a rename took a fifth of a claim's time, and made every agent's
 * commit contend on one folder. The file is still made that way (a temporary file holding the whole record,
 * renamed onto the name), so the name never holds a file without a record, even after a crash; and a process
 * writes in place only into the regular file the name holds, while that file has no other name, so a link planted
 * there or a file with a second (hard) link, such as a backup's copy, is replaced, never written through.
 *
 * A read is not ordered against a write: one that meets a write half done sees part of each record, so readers
 * check what they read and read again (read's `holds`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Anchor, canonicalJson } from './chain.js';
import { makePrivateDir, projectKey } from '../home.js';
import { faultPoint } from '../store/fault.js';

/** Room for `{"count":N,"head":"<64 hex>"}` with any count, padded with spaces, and a newline. */
const RECORD_BYTES = 128;
/** Reads of an anchor that does not hold, before it is taken as it is (a torn read does not last)... */
const READS = 3;
/** ...with this long between them (ms): the writer a read met may have been paused mid-copy. */
const REREAD_WAIT_MS = 1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export type AnchorRead = Anchor | 'missing' | 'unreadable';

export class AnchorFile {
  private path: string | undefined;
  /** The file this process writes in place, and its identity when it was made. */
  private kept: { fd: number; dev: number; ino: number } | undefined;
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
      if (i > 0) Atomics.wait(sleeper, 0, 0, REREAD_WAIT_MS);
      a = readOnce(this.file);
      if (a === 'missing' || (a !== 'unreadable' && holds(a))) return a;
    }
    return a;
  }

  /**
   * Write `anchor` in place, into the file this process keeps while the name still holds it alone, else into the
   * regular file the name holds (another process's, or one an earlier run left); a new file replaces whatever
   * else is there (nothing, a link, a file with other names).
   */
  write(anchor: Anchor): void {
    const record = Buffer.from(`${canonicalJson(anchor).padEnd(RECORD_BYTES - 1)}\n`);
    const now = fs.lstatSync(this.file, { throwIfNoEntry: false });
    const alone = now !== undefined && now.isFile() && now.nlink === 1;
    const k = this.kept;
    let size: number | undefined;
    if (k && alone && now.ino === k.ino && now.dev === k.dev) size = now.size;
    else {
      this.close();
      size = alone ? this.adopt() : undefined;
      if (size === undefined) return this.replace(record);
    }
    const fd = this.kept!.fd;
    fs.writeSync(fd, record, 0, record.length, 0);
    // A longer file (an anchor written by hand) would keep its tail; parseAnchor reads past one meanwhile.
    if (size > record.length) fs.ftruncateSync(fd, record.length);
  }

  close(): void {
    if (this.kept) fs.closeSync(this.kept.fd);
    this.kept = undefined;
  }

  /** Keep open the regular file the name holds, when it still has no other name: its size, or undefined. */
  private adopt(): number | undefined {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    } catch {
      return undefined;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.nlink !== 1) {
        fs.closeSync(fd);
        return undefined;
      }
      if ((st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
      this.kept = { fd, dev: st.dev, ino: st.ino };
      return st.size;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Make the anchor a new file holding `record` (0600 in 0700 folders), and keep it open. */
  private replace(record: Buffer, again = false): void {
    const dir = path.dirname(this.file);
    makePrivateDir(this.lokiHome, dir);
    const temp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    let fd: number;
    try {
      const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
      fd = fs.openSync(temp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      // The folder was removed since this process made it: make it again, once.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || again || !makePrivateDir(this.lokiHome, dir, true))
        throw err;
      return this.replace(record, true);
    }
    try {
      fs.writeSync(fd, record, 0, record.length, 0);
      const st = fs.fstatSync(fd);
      faultPoint('anchor-before-rename');
      fs.renameSync(temp, this.file);
      this.kept = { fd, dev: st.dev, ino: st.ino };
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
      throw err;
    }
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
    const v = parseAnchor(text);
    if (!Number.isInteger(v.count) || typeof v.head !== 'string') return 'unreadable';
    return { count: v.count, head: v.head };
  } catch {
    return 'unreadable';
  }
}

/**
 * The anchor a file holds: all of it as JSON, or else its first line (the record, followed by the tail of a longer
 * file that a crash kept from being cut).
 */
function parseAnchor(text: string): Anchor {
  try {
    return JSON.parse(text) as Anchor;
  } catch (err) {
    const line = text.indexOf('\n');
    if (line < 0) throw err;
    return JSON.parse(text.slice(0, line)) as Anchor;
  }
}

/** The external anchor's path for a project: a digest of its canonical root under `$LOKI_HOME/anchors/`. */
export function externalAnchorFile(lokiHome: string, projectRoot: string): string {
  return path.join(lokiHome, 'anchors', `${projectKey(projectRoot)}.json`);
}
