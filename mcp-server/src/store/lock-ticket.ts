/**
 * Lock tickets (store/lock.ts): a process's private file for one lock name, holding its owner record, that is
 * hard-linked as the lock file to take the lock. `link` fails with EEXIST exactly as an O_EXCL create does, but
 * allocates no inode, which on some file systems costs ten times the rest of taking and releasing a lock
 * (bench/NOTES.md). A ticket is written only while it is not linked as a lock, so nobody reads it half written.
 *
 * Name: `.<lock>.<host digest>.<pid>.<random>.ticket` (hidden; `loki doctor` and the lock code look only at
 * `*.lock`). A process removes its tickets when it exits; those of a process that was killed on this host are
 * removed by the next process that makes a ticket in the same folder.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HOST_TAG, sweepDeadProcessFiles } from './host-files.js';
import type { SafeDir } from './paths.js';

const SUFFIX = '.ticket';

const live = new Set<Ticket>();
let exitHookSet = false;

export class Ticket {
  /** Bytes of the record written last (a shorter one must cut the file). */
  private length = 0;

  private constructor(
    readonly file: string,
    private readonly fd: number,
    /** The ticket's inode: a lock file with this identity is this ticket linked, i.e. held by us. */
    readonly identity: { dev: number; ino: number },
  ) {}

  static create(dir: SafeDir, lockName: string): Ticket {
    const file = path.join(dir.root, `.${lockName}.${HOST_TAG}.${process.pid}.${crypto.randomBytes(4).toString('hex')}${SUFFIX}`);
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
    let identity: { dev: number; ino: number };
    try {
      dir.assertDescriptorInside(fd, path.basename(file));
      const st = fs.fstatSync(fd);
      identity = { dev: st.dev, ino: st.ino };
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw err;
    }
    const ticket = new Ticket(file, fd, identity);
    live.add(ticket);
    if (!exitHookSet) {
      exitHookSet = true;
      process.once('exit', () => {
        for (const t of [...live]) t.remove();
      });
    }
    return ticket;
  }

  /** Record the owner (in place: the ticket keeps its inode). */
  write(owner: object): void {
    const buf = Buffer.from(JSON.stringify(owner), 'utf8');
    fs.writeSync(this.fd, buf, 0, buf.length, 0);
    // Owner records are nearly always the same length: cut the file only when this one is shorter.
    if (buf.length < this.length) fs.ftruncateSync(this.fd, buf.length);
    this.length = buf.length;
  }

  /** `st` (an lstat of a lock file) is this ticket, linked under the lock's name. */
  isLinkedAs(st: fs.Stats): boolean {
    return st.ino === this.identity.ino && st.dev === this.identity.dev;
  }

  remove(): void {
    live.delete(this);
    try {
      fs.closeSync(this.fd);
    } catch {
      /* closed */
    }
    fs.rmSync(this.file, { force: true });
  }
}

/** The pid of a ticket name made on this host, or undefined (not a ticket, or another host's). */
export function ticketPid(name: string): number | undefined {
  if (!name.startsWith('.') || !name.endsWith(SUFFIX)) return undefined;
  const parts = name.slice(0, -SUFFIX.length).split('.');
  if (parts.length < 5 || parts.at(-3) !== HOST_TAG) return undefined;
  const pid = Number(parts.at(-2));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Remove the tickets that processes of this host no longer running left in the folder `root`. A ticket that is
 * still linked as a lock leaves that lock in place (it is another name for the same file): the lock's own
 * stale-owner check frees it. Returns how many were removed.
 */
export function sweepDeadTickets(root: string, alive: (pid: number) => boolean): number {
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return 0;
  }
  return sweepDeadProcessFiles(root, names, ticketPid, alive);
}
