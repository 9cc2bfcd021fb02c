/**
 * Where fsyncs run (store/fsync-pace.ts): in place while they are quick, handed to the thread pool once they are
 * slow, with an in-place probe now and then that brings them back when the disk is quick again. And fsyncAsync
 * itself, on a real file, on both paths.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsyncPace, PROBE_EVERY, QUICK_FSYNC_MS } from '../mcp-server/src/store/fsync-pace.js';
import { fsyncAsync } from '../mcp-server/src/store/fsx.js';

/** Feed the pace `n` fsyncs of `ms` each, as fsyncAsync does; how many ran in place. */
function run(pace: FsyncPace, n: number, ms: number): number {
  let inPlace = 0;
  for (let i = 0; i < n; i++) {
    if (pace.inPlace()) {
      inPlace++;
      pace.record(ms);
    }
  }
  return inPlace;
}

describe('FsyncPace', () => {
  it('runs quick fsyncs in place, every one', () => {
    const pace = new FsyncPace();
    expect(run(pace, 1000, 0.2)).toBe(1000);
    expect(pace.estimate).toBeCloseTo(0.2, 5);
  });

  it('hands slow fsyncs off, probing in place once every PROBE_EVERY', () => {
    const pace = new FsyncPace();
    // The first ones run in place until the estimate passes the threshold.
    const first = run(pace, 10, 8);
    expect(first).toBeLessThan(10);
    expect(pace.estimate).toBeGreaterThan(QUICK_FSYNC_MS);
    expect(run(pace, PROBE_EVERY * 10, 8)).toBe(10);
  });

  it('one slow fsync among quick ones does not hand off more than a few probe rounds', () => {
    const pace = new FsyncPace();
    run(pace, 100, 0.2);
    pace.record(12); // as if the last in-place one had stalled
    expect(pace.inPlace()).toBe(false);
    // Quick probes bring the estimate back under the threshold within a few rounds.
    let calls = 0;
    while (!(pace.estimate <= QUICK_FSYNC_MS)) {
      run(pace, 1, 0.2);
      calls++;
      expect(calls).toBeLessThan(PROBE_EVERY * 12);
    }
    expect(run(pace, 100, 0.2)).toBe(100);
  });

  it('a disk that becomes slow is noticed at once; one that becomes quick, at the next probes', () => {
    const pace = new FsyncPace();
    run(pace, 50, 0.3);
    expect(run(pace, 5, 20)).toBe(1);
    expect(run(pace, PROBE_EVERY * 20, 0.3)).toBeGreaterThan(PROBE_EVERY * 10);
  });
});

describe('fsyncAsync', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('syncs a real file and a directory; a bad descriptor is a rejection, not a throw', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-fsync-'));
    dirs.push(dir);
    const fd = fs.openSync(path.join(dir, 'f'), 'w');
    fs.writeSync(fd, 'data');
    for (let i = 0; i < 50; i++) await fsyncAsync(fd);
    const dfd = fs.openSync(dir, 'r');
    await fsyncAsync(dfd);
    fs.closeSync(dfd);
    fs.closeSync(fd);
    // A descriptor no process has (past any open-file limit): every call rejects, none throws.
    const bad = 1_000_000;
    for (let i = 0; i < PROBE_EVERY + 2; i++) {
      let returned: Promise<void> | undefined;
      expect(() => (returned = fsyncAsync(bad))).not.toThrow();
      await expect(returned).rejects.toMatchObject({ code: 'EBADF' });
    }
  });
});
