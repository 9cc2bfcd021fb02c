/**
 * Files named after the process that made them (lock tickets, spare inodes): a digest of the host's name goes into
 * each name, so a process only ever sweeps the files of processes of its own host that are gone.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Short digest of this host's name. */
export const HOST_TAG = crypto.createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);

/**
 * Remove the files among `names` (in the folder `dir`) whose process, as `pidOf` reads it from the name (undefined:
 * not such a file, or another host's), is not this one and no longer runs (`alive`). Returns how many went.
 */
export function sweepDeadProcessFiles(dir: string, names: readonly string[], pidOf: (name: string) => number | undefined, alive: (pid: number) => boolean): number {
  let removed = 0;
  for (const name of names) {
    const pid = pidOf(name);
    if (pid === undefined || pid === process.pid || alive(pid)) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
      removed++;
    } catch {
      /* raced with another sweeper */
    }
  }
  return removed;
}
