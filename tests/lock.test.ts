/**
 * LockManager: in-process and cross-process mutual exclusion, recovery from a SIGKILLed holder, stale and garbage
 * lock files, refusal to steal a live owner's lock, and a 1,000-iteration race of separate processes reclaiming
 * a stale lock at the same time (no two holders, exactly one removal per stale lock).
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as yieldOnce } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockManager, LockTimeoutError, inspectLocks, processAlive, readOwner } from '../mcp-server/src/store/lock.js';
import { ticketPid } from '../mcp-server/src/store/lock-ticket.js';
import { SafeDir } from '../mcp-server/src/store/paths.js';
import { FIXTURES_DIR, type PrivateBundle, privateBundle } from './fixtures/bundle.js';
import { spawnChild } from './fixtures/children.js';

const tmpRoots: string[] = [];
function tmpDir(prefix = 'loki-lock-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpRoots.push(dir);
  return dir;
}

let bundle: PrivateBundle;
const living = new Set<ChildProcess>();

beforeAll(async () => {
  bundle = await privateBundle();
});
afterAll(() => {
  for (const c of living) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  bundle?.cleanup();
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

/** A pid that belonged to a process that has exited and been reaped. */
function deadPid(): number {
  for (;;) {
    const r = spawnSync('true');
    if (r.pid && !processAlive(r.pid)) return r.pid;
  }
}

function plant(file: string, content: string, ageMs = 0): void {
  fs.writeFileSync(file, content, { flag: 'wx' });
  if (ageMs > 0) {
    const t = new Date(Date.now() - ageMs);
    fs.utimesSync(file, t, t);
  }
}

function owner(pid: number, atOffsetMs = 0, host = os.hostname(), token = 'feedfacefeedface'): string {
  return JSON.stringify({ pid, host, token, at: Date.now() - atOffsetMs });
}

function captureWarnings(): { codes: string[]; stop: () => void } {
  const codes: string[] = [];
  const on = (w: Error & { code?: string }) => codes.push(w.code ?? '');
  process.on('warning', on);
  return { codes, stop: () => process.off('warning', on) };
}

describe('LockManager in one process', () => {
  it('100 parallel withLock calls incrementing a counter file lose 0 updates', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir));
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, '0');
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 100 }, () =>
        locks.withLock('counter', async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          const v = Number(fs.readFileSync(counter, 'utf8'));
          await yieldOnce();
          fs.writeFileSync(counter, String(v + 1));
          inside--;
        }),
      ),
    );
    expect(fs.readFileSync(counter, 'utf8')).toBe('100');
    expect(maxInside).toBe(1);
    expect(fs.existsSync(path.join(dir, 'counter.lock'))).toBe(false);
    expect(locks.heldNames()).toEqual([]);
  });

  it('100 parallel calls spread over 4 LockManagers (only the lock file keeps them apart) lose 0 updates', async () => {
    const dir = tmpDir();
    const managers = Array.from({ length: 4 }, () => new LockManager(SafeDir.open(dir)));
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, '0');
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        managers[i % 4]!.withLock('counter', async () => {
          const v = Number(fs.readFileSync(counter, 'utf8'));
          await yieldOnce();
          await yieldOnce();
          fs.writeFileSync(counter, String(v + 1));
        }),
      ),
    );
    expect(fs.readFileSync(counter, 'utf8')).toBe('100');
    expect(fs.existsSync(path.join(dir, 'counter.lock'))).toBe(false);
  });

  it('a failing critical section releases the lock', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir));
    await expect(locks.withLock('x', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(fs.existsSync(path.join(dir, 'x.lock'))).toBe(false);
    await expect(locks.withLock('x', () => 42)).resolves.toBe(42);
  });

  it.each([
    ['empty', ''],
    ['garbage', 'garbage'],
    ['truncated JSON', '{"pid":12'],
    ['JSON of the wrong shape', '{"pid":"x","token":1}'],
    ['NUL bytes', '\0\0\0\0'],
  ])('a lock file with %s content older than 1 s is reclaimed at once', async (_name, content) => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir), { timeoutMs: 5_000 });
    plant(path.join(dir, 'x.lock'), content, 2_000);
    const w = captureWarnings();
    const t0 = Date.now();
    try {
      await locks.withLock('x', () => undefined);
      await yieldOnce();
    } finally {
      w.stop();
    }
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(w.codes).toContain('LOKI_STALE_LOCK');
    expect(fs.existsSync(path.join(dir, 'x.lock'))).toBe(false);
  });

  it('a fresh garbage lock file is left alone until it is 1 s old, then reclaimed', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir), { timeoutMs: 5_000 });
    plant(path.join(dir, 'x.lock'), '');
    const t0 = Date.now();
    await locks.withLock('x', () => undefined);
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(800);
    expect(waited).toBeLessThan(3_000);
  });

  it('a lock whose owner died on this host is reclaimed at once, even when young', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir), { timeoutMs: 5_000, staleMs: 60_000 });
    plant(path.join(dir, 'x.lock'), owner(deadPid()));
    const t0 = Date.now();
    await locks.withLock('x', () => undefined);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('a lock older than staleMs is reclaimed even when its pid is alive (pid reuse)', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir), { timeoutMs: 5_000, staleMs: 1_000 });
    plant(path.join(dir, 'x.lock'), owner(1, 5_000));
    await locks.withLock('x', () => undefined);
    expect(fs.existsSync(path.join(dir, 'x.lock'))).toBe(false);
  });

  it.each([
    ['the parent process (vitest)', () => process.ppid, os.hostname()],
    ['pid 1', () => 1, os.hostname()],
    ['a pid on another host (cannot be checked, so it is trusted until staleMs)', () => deadPid(), 'some-other-host'],
  ])('a young lock owned by %s is not stolen: LockTimeoutError names the holder and suggests `loki doctor`', async (_name, pidOf, host) => {
    const dir = tmpDir();
    const pid = pidOf();
    if (host === os.hostname()) expect(processAlive(pid)).toBe(true);
    const file = path.join(dir, 'x.lock');
    plant(file, owner(pid, 0, host));
    const locks = new LockManager(SafeDir.open(dir), { timeoutMs: 400, staleMs: 60_000 });
    let ran = false;
    const t0 = Date.now();
    const err = await locks
      .withLock('x', () => {
        ran = true;
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(ran).toBe(false);
    expect(err).toBeInstanceOf(LockTimeoutError);
    const message = (err as Error).message;
    expect(message).toContain(`"x" lock`);
    expect(message).toContain(`pid ${pid} on ${host}`);
    expect(message).toContain('loki doctor');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(Date.now() - t0).toBeLessThan(5_000);
    // Still there, still the same owner.
    const still = readOwner(file);
    expect(still !== 'missing' && still !== 'unreadable' && still.token).toBe('feedfacefeedface');
    expect(inspectLocks(SafeDir.open(dir), 60_000)).toEqual([{ name: 'x', owner: expect.stringContaining(`pid ${pid}`) as string, stale: false }]);
  });
});

describe('lock tickets', () => {
  const tickets = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.ticket'));

  it("the held lock is a hard link to the holder's ticket; released, only the ticket is left; releaseAll removes it", async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir));
    await locks.withLock('t', () => {
      const [ticket] = tickets(dir);
      expect(ticket).toMatch(new RegExp(`^\\.t\\.[0-9a-f]{8}\\.${process.pid}\\.[0-9a-f]{8}\\.ticket$`));
      expect(ticketPid(ticket!)).toBe(process.pid);
      expect(fs.statSync(path.join(dir, 't.lock')).ino).toBe(fs.statSync(path.join(dir, ticket!)).ino);
      const held = readOwner(path.join(dir, 't.lock'));
      expect(held !== 'missing' && held !== 'unreadable' && held.pid).toBe(process.pid);
    });
    expect(fs.readdirSync(dir)).toEqual(tickets(dir));
    expect(tickets(dir)).toHaveLength(1);
    // Taken again, the same ticket is reused (no new file), with a new token.
    const before = tickets(dir);
    await locks.withLock('t', () => undefined);
    expect(tickets(dir)).toEqual(before);
    locks.releaseAll();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("a ticket removed by hand is made again; a dead process's ticket is swept, another host's is left", async () => {
    const dir = tmpDir();
    const first = new LockManager(SafeDir.open(dir));
    await first.withLock('t', () => undefined);
    const hostTag = tickets(dir)[0]!.split('.')[2]!;
    first.releaseAll();
    const dead = deadPid();
    const deadOnThisHost = `.t.${hostTag}.${dead}.0badf00d.ticket`;
    const otherHost = `.t.${hostTag === '00000000' ? '11111111' : '00000000'}.${dead}.0badf00e.ticket`;
    plant(path.join(dir, deadOnThisHost), owner(dead));
    plant(path.join(dir, otherHost), owner(dead));
    expect(ticketPid(deadOnThisHost)).toBe(dead);
    expect(ticketPid(otherHost)).toBeUndefined();
    const locks = new LockManager(SafeDir.open(dir));
    await locks.withLock('t', () => undefined);
    expect(tickets(dir).filter((n) => n.includes(`.${dead}.`))).toEqual([otherHost]);
    for (const n of tickets(dir).filter((x) => x.includes(`.${process.pid}.`))) fs.rmSync(path.join(dir, n));
    expect(await locks.withLock('t', () => 'taken')).toBe('taken');
    expect(tickets(dir).filter((n) => n.includes(`.${process.pid}.`))).toHaveLength(1);
    locks.releaseAll();
  });

  it('a lock released at shutdown while its section still runs is released once, without a takeover warning', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir));
    const warnings = captureWarnings();
    try {
      await locks.withLock('t', () => {
        locks.releaseAll();
        // Someone else may take it at once; the section ending must not touch their lock.
        fs.writeFileSync(path.join(dir, 't.lock'), owner(process.pid + 1));
      });
      await yieldOnce();
      expect(warnings.codes).not.toContain('LOKI_LOCK_COMPROMISED');
      expect(fs.existsSync(path.join(dir, 't.lock'))).toBe(true);
    } finally {
      warnings.stop();
    }
  });

  it('a lock taken over while held (even by a copy of its record) is left to its new holder at release, with a warning', async () => {
    const dir = tmpDir();
    const locks = new LockManager(SafeDir.open(dir));
    const file = path.join(dir, 't.lock');
    const warnings = captureWarnings();
    try {
      await locks.withLock('t', () => {
        // Someone judged the lock stale and put their own file in its place; it even carries our record.
        const record = fs.readFileSync(file, 'utf8');
        fs.unlinkSync(file);
        fs.writeFileSync(file, record);
      });
      await yieldOnce();
      expect(fs.existsSync(file)).toBe(true);
      expect(warnings.codes).toContain('LOKI_LOCK_COMPROMISED');
      fs.unlinkSync(file);
      // The ticket keeps working for the next turn, and a normal release removes the lock.
      await locks.withLock('t', () => undefined);
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      warnings.stop();
      locks.releaseAll();
    }
  });
});

describe('LockManager across processes', () => {
  it('8 processes x 500 locked increments of a shared counter file = exactly 4,000', async () => {
    const dir = tmpDir();
    const lockDir = path.join(dir, 'locks');
    fs.mkdirSync(lockDir);
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, '0');
    const children = Array.from({ length: 8 }, () => spawnChild('lock-incrementer.mjs', [lockDir, counter, '500'], { LOKI_BUNDLE: bundle.file }));
    for (const c of children) living.add(c.proc);
    await Promise.all(children.map((c) => c.line(/^ready$/)));
    const t0 = Date.now();
    for (const c of children) c.proc.stdin!.end('go\n');
    const results = await Promise.all(children.map((c) => c.line(/^\{/, 80_000)));
    const exits = await Promise.all(children.map((c) => c.exited));
    const ms = Date.now() - t0;
    expect(exits, children.map((c) => c.stderr()).join('\n')).toEqual(children.map(() => ({ code: 0, signal: null })));
    for (const r of results) expect(JSON.parse(r)).toMatchObject({ done: 500, compromised: 0 });
    expect(fs.readFileSync(counter, 'utf8')).toBe('4000');
    expect(fs.readdirSync(lockDir)).toEqual([]);
    console.log(`lock: 4,000 cross-process increments in ${ms} ms`);
  }, 90_000);

  it('a process kept waiting asks for a turn (wanted); the request goes once it holds the lock, and a dead asker\'s is ignored', async () => {
    const dir = tmpDir();
    const lockDir = path.join(dir, 'locks');
    fs.mkdirSync(lockDir);
    const locks = new LockManager(SafeDir.open(lockDir));
    let release!: () => void;
    const held = locks.withLock('busy', () => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 20));
    expect(locks.wanted('busy')).toBe(false);
    const waiter = spawnChild('lock-holder.mjs', [lockDir, 'busy'], { LOKI_BUNDLE: bundle.file });
    living.add(waiter.proc);
    const deadline = Date.now() + 10_000;
    // The request is created, then its owner record written: wait for both.
    const asker = () => readOwner(path.join(lockDir, 'busy.wanted'));
    while (typeof asker() !== 'object' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(asker()).toMatchObject({ pid: waiter.proc.pid });
    expect(locks.wanted('busy')).toBe(true);
    release();
    await held;
    await waiter.line(/^held \d+$/);
    expect(fs.existsSync(path.join(lockDir, 'busy.wanted'))).toBe(false);
    expect(locks.wanted('busy')).toBe(false);
    waiter.proc.kill('SIGKILL');
    await waiter.exited;
    // A request left behind by a process that is gone: ignored, and removed.
    fs.writeFileSync(path.join(lockDir, 'busy.wanted'), JSON.stringify({ pid: waiter.proc.pid, host: os.hostname(), token: 'x', at: Date.now() }));
    expect(locks.wanted('busy')).toBe(false);
    expect(fs.existsSync(path.join(lockDir, 'busy.wanted'))).toBe(false);
  });

  it('a holder SIGKILLed while holding the lock: a waiter acquires within 3 s', async () => {
    const dir = tmpDir();
    const lockDir = path.join(dir, 'locks');
    fs.mkdirSync(lockDir);
    const recoveries: number[] = [];
    for (let round = 0; round < 3; round++) {
      const holder = spawnChild('lock-holder.mjs', [lockDir, 'held'], { LOKI_BUNDLE: bundle.file });
      living.add(holder.proc);
      const line = await holder.line(/^held \d+$/);
      expect(Number(line.split(' ')[1])).toBe(holder.proc.pid);
      // Default options: staleMs 10 s, so only the dead-owner check can free the lock in time.
      const waiter = new LockManager(SafeDir.open(lockDir));
      let killedAt = Number.POSITIVE_INFINITY;
      const acquired = waiter.withLock('held', () => Date.now());
      await new Promise((r) => setTimeout(r, 150)); // the waiter is now polling a live holder's lock
      killedAt = Date.now();
      holder.proc.kill('SIGKILL');
      const at = await acquired;
      expect(at).toBeGreaterThanOrEqual(killedAt);
      expect(await holder.exited).toEqual({ code: null, signal: 'SIGKILL' });
      recoveries.push(at - killedAt);
      expect(fs.existsSync(path.join(lockDir, 'held.lock'))).toBe(false);
    }
    console.log(`lock: recovery after SIGKILL of the holder: ${recoveries.join(', ')} ms`);
    for (const r of recoveries) expect(r).toBeLessThan(3_000);
  }, 30_000);

  it('1,000 stale-reclaim races between 4 processes: never two holders, exactly one removal per stale lock', async () => {
    const dir = tmpDir();
    const lockDir = path.join(dir, 'locks');
    fs.mkdirSync(lockDir);
    const marker = path.join(dir, 'marker');
    const lockFile = path.join(lockDir, 'race.lock');
    const guardFile = `${lockFile}.reclaim`;
    const racers: ChildProcess[] = [];
    const stderr: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = fork(path.join(FIXTURES_DIR, 'lock-racer.mjs'), [lockDir, marker, '5000'], {
        env: { ...process.env, LOKI_BUNDLE: bundle.file, LOKI_FAULT: '' },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      c.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
      living.add(c);
      racers.push(c);
    }
    await Promise.all(racers.map((c) => new Promise((resolve) => c.once('message', resolve))));

    type Reply = { k: number; violation: string | null; reclaims: number; compromised: number };
    const t0 = Date.now();
    const kinds = new Map<string, number>();
    for (let k = 0; k < 1000; k++) {
      expect(fs.existsSync(lockFile)).toBe(false);
      let kind: string;
      switch (k % 4) {
        case 0:
          kind = 'dead pid';
          plant(lockFile, owner(deadPid(), 0, os.hostname(), `dead${k}`));
          break;
        case 1:
          kind = 'garbage, 2 s old';
          plant(lockFile, `garbage ${k}`, 2_000);
          break;
        case 2:
          kind = 'empty, 2 s old';
          plant(lockFile, '', 2_000);
          break;
        default:
          kind = 'live pid, older than staleMs';
          plant(lockFile, owner(process.pid, 60_000, os.hostname(), `old${k}`));
      }
      if (k % 5 === 0) {
        kind += ' + stale reclaim guard';
        plant(guardFile, owner(deadPid(), 0, os.hostname(), `guard${k}`));
      }
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const replies = await Promise.all(
        racers.map(
          (c) =>
            new Promise<Reply>((resolve, reject) => {
              const onExit = () => reject(new Error(`racer ${c.pid} exited: ${stderr.join('')}`));
              c.once('exit', onExit);
              c.once('message', (m) => {
                c.off('exit', onExit);
                resolve(m as Reply);
              });
              c.send({ k });
            }),
        ),
      );
      const problems = replies.filter((r) => r.violation !== null || r.compromised !== 0 || r.k !== k);
      expect(problems, `iteration ${k} (${kind})`).toEqual([]);
      const removals = replies.reduce((n, r) => n + r.reclaims, 0);
      expect(removals, `stale removals in iteration ${k} (${kind})`).toBe(1);
      expect(fs.existsSync(marker)).toBe(false);
      expect(fs.existsSync(guardFile)).toBe(false);
    }
    const ms = Date.now() - t0;
    for (const c of racers) c.send('exit');
    await Promise.all(racers.map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once('exit', resolve)))));
    expect(fs.readdirSync(lockDir)).toEqual([]);
    console.log(`lock: 1,000 stale-reclaim races in ${ms} ms (${[...kinds].map(([k, n]) => `${k}: ${n}`).join('; ')})`);
  }, 120_000);
});
