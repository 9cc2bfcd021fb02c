/**
 * `loki run`: a person starts the run and the host is driven headless to the end. With the real Claude Code CLI
 * and the scripted model on the loopback fake API (tests/e2e): a fresh git project to COMPLETE, exit 0 and the
 * receipt VERIFIED, after one of its sessions is killed mid-task and restarted; `loki stop` from another terminal
 * ends it with the STOP code. With a stand-in `claude` on PATH: a host that keeps failing ends with its code, a
 * hung one is ended at the time limit, a missing one is said as missing; nothing is left running.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOST_BINS_DIR,
  REPO,
  cannotRun,
  leftRunning,
  makeProject,
  offlineHost,
  scriptedApi,
  settledDist,
  storedOutcome,
  type Project,
} from './e2e/hosts.mjs';

const LOKI = path.join(REPO, 'mcp-server', 'dist', 'loki.js');
const EXIT = { complete: 0, usage: 2, stop: 3, limit: 5, hostMissing: 6, hostFailing: 7 };

interface Event {
  type: string;
  at: string;
  [k: string]: unknown;
}

interface Running {
  lines: string[];
  /** Resolves with the first line `match` accepts (now or later). */
  line(match: (l: string) => boolean): Promise<string>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

/** `loki <args>` started in the project, its stdout read line by line as it comes. */
function loki(args: string[], cwd: string, env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [LOKI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiting: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiting.filter((x) => x.match(l))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return {
    lines,
    line: (match) =>
      new Promise((resolve) => {
        const seen = lines.find(match);
        if (seen !== undefined) resolve(seen);
        else waiting.push({ match, resolve });
      }),
    done: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))),
    kill: (signal) => child.kill(signal),
  };
}

/** `promise`, or a failure showing `seen()` when it takes over `ms`. */
function within<T>(promise: Promise<T>, ms: number, seen: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no end after ${ms} ms; output so far:\n${seen()}`)), ms);
    }),
  ]);
}

const events = (stdout: string): Event[] =>
  stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Event);

/** A folder holding a stand-in `claude`: a shell script doing `body`. */
function standIn(p: Project, body: string): string {
  const dir = path.join(p.base, 'bin');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'claude'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

/** The caller's environment with PATH led by `dir`, without LOKI_* or the hosts' variables. */
function envWith(p: Project, dir: string | null): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(LOKI_|CLAUDE|ANTHROPIC|VITEST)/.test(k) && k !== 'NO_COLOR' && k !== 'FORCE_COLOR') env[k] = v;
  const system = '/usr/local/bin:/usr/bin:/bin';
  return {
    ...env,
    HOME: p.home,
    LOKI_HOME: path.join(p.home, '.loki'),
    PATH: [dir, path.dirname(process.execPath), system].filter(Boolean).join(':'),
  };
}

describe('loki run with a stand-in host', () => {
  let p: Project;
  beforeAll(async () => {
    await settledDist();
  });

  it('refuses an unknown host and a bad number, naming the fix', () => {
    p = makeProject();
    try {
      const env = envWith(p, null);
      const host = spawnSync(process.execPath, [LOKI, 'run', 'prd.md', '--host', 'claud'], { cwd: p.root, env });
      expect(host.status).toBe(EXIT.usage);
      expect(String(host.stderr)).toMatch(/did you mean "claude"/);
      const n = spawnSync(process.execPath, [LOKI, 'start', '--max-sessions', '0'], { cwd: p.root, env });
      expect(n.status).toBe(EXIT.usage);
      expect(String(n.stderr)).toMatch(/--max-sessions takes a positive whole number/);
      expect(fs.existsSync(path.join(p.root, '.loki'))).toBe(false);
    } finally {
      p.cleanup();
    }
  });

  it('a host that is not installed ends with its code before anything is started', () => {
    p = makeProject();
    try {
      const r = spawnSync(process.execPath, [LOKI, 'run', 'prd.md', '--host', 'codex'], {
        cwd: p.root,
        env: envWith(p, null),
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(EXIT.hostMissing);
      expect(r.stdout).toMatch(/codex is not installed/);
      expect(fs.existsSync(path.join(p.root, '.loki'))).toBe(false);
    } finally {
      p.cleanup();
    }
  });

  it('a host that fails every session is restarted with a backoff, then given up on with its exit code', async () => {
    p = makeProject();
    try {
      const bin = standIn(p, 'echo "stand-in: no model today" >&2\nexit 3');
      const run = loki(['run', 'prd.md', '--json'], p.root, envWith(p, bin));
      const out = await run.done;
      expect(out.code, out.stderr).toBe(EXIT.hostFailing);
      const ev = events(out.stdout);
      expect(ev.filter((e) => e.type === 'session')).toHaveLength(3);
      const ends = ev.filter((e) => e.type === 'session-end');
      expect(ends.map((e) => [e.how, e.code])).toEqual([
        ['crashed', 3],
        ['crashed', 3],
        ['crashed', 3],
      ]);
      expect(String(ends[0]!.tail)).toMatch(/no model today/);
      expect(ev.filter((e) => e.type === 'restart').map((e) => e.inSeconds)).toEqual([1, 2]);
      const end = ev.at(-1)!;
      expect(end).toMatchObject({ type: 'end', outcome: 'hostFailing', exitCode: EXIT.hostFailing });
      expect(String(end.reason)).toMatch(/claude failed 3 sessions in a row \(last: exit code 3\)/);
      // The run was started (by a person) and is still there to resume.
      expect(ev.find((e) => e.type === 'start')).toMatchObject({ resumed: false, host: 'claude', queued: 4 });
      expect(ev[0]).toMatchObject({ type: 'warning', message: expect.stringMatching(/loki install claude/) });
      expect(leftRunning(p.base)).toEqual([]);
    } finally {
      p.cleanup();
    }
  });

  it('a hung host is ended at the time limit, its whole process group with it, and the limit is named', async () => {
    p = makeProject();
    try {
      // The stand-in's child (sleep) is in its group: it must go too.
      const bin = standIn(p, 'sleep 60 &\nwait');
      const t0 = Date.now();
      const run = loki(['run', 'prd.md', '--minutes', '0.05'], p.root, envWith(p, bin));
      const out = await run.done;
      expect(out.code, out.stderr + out.stdout).toBe(EXIT.limit);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(out.stdout).toMatch(/loki run ended: time limit \(0\.05 min\) reached \(exit 5, 1 session\(s\)\)/);
      expect(out.stdout.includes('\u001b[')).toBe(false);
      expect(leftRunning(p.base)).toEqual([]);
    } finally {
      p.cleanup();
    }
  });

  it('--max-sessions ends the run with the limit named', async () => {
    p = makeProject();
    try {
      // A session that ends at once having done nothing is a failed one; the session limit comes first here.
      const bin = standIn(p, 'exit 0');
      const out = await loki(['run', 'prd.md', '--max-sessions', '1', '--json'], p.root, envWith(p, bin)).done;
      expect(out.code, out.stderr).toBe(EXIT.limit);
      const ev = events(out.stdout);
      expect(ev.find((e) => e.type === 'session-end')).toMatchObject({ how: 'no-progress', code: 0 });
      expect(ev.at(-1)).toMatchObject({ type: 'end', outcome: 'limit', reason: 'session limit (1) reached' });
    } finally {
      p.cleanup();
    }
  });
});

describe("loki run: loki_start's rules, said for a person", () => {
  it("no spec and no run, a different spec, --restart: as loki_start, in the CLI's words", () => {
    const p = makeProject();
    try {
      // A stand-in that is never reached: PAUSE ends each loki run right after its start.
      const env = envWith(p, standIn(p, 'exit 9'));
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [LOKI, 'run', ...args], { cwd: p.root, env, encoding: 'utf8' });
      const none = run();
      expect(none.status).toBe(EXIT.usage);
      expect(none.stderr).toMatch(/no run yet: name the spec: `loki run docs\/prd\.md`/);
      expect(spawnSync(process.execPath, [LOKI, 'pause'], { cwd: p.root, env }).status).toBe(0);
      const first = run('prd.md');
      expect(first.status, first.stderr).toBe(4);
      const id = /Started run (r-[0-9a-f-]+)/.exec(first.stdout)![1]!;
      expect(run().stdout).toMatch(new RegExp(`Resumed run ${id}`));
      fs.writeFileSync(path.join(p.root, 'other.md'), '# other\n\n- R1: `noop()` in src/noop.js returns nothing\n');
      const other = run('other.md');
      expect(other.status).toBe(EXIT.usage);
      expect(other.stderr).toMatch(
        /different spec; run `loki run` without a spec to resume it, or `loki run SPEC --restart`/,
      );
      const restarted = run('other.md', '--restart');
      expect(restarted.status, restarted.stderr).toBe(4);
      expect(restarted.stdout).toMatch(/Started run r-/);
      expect(restarted.stdout).not.toMatch(new RegExp(`Started run ${id}`));
    } finally {
      p.cleanup();
    }
  });
});

describe("loki run: signals and a person's PAUSE", () => {
  it('Ctrl-C (SIGINT) ends the host session and its group, exit 130; SIGTERM 143, SIGHUP 129', async () => {
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      const p = makeProject();
      try {
        const bin = standIn(p, 'sleep 60 &\nwait');
        const run = loki(['run', 'prd.md', '--json'], p.root, envWith(p, bin));
        await within(
          run.line((l) => l.includes('"type":"session"')),
          20_000,
          () => run.lines.join('\n'),
        );
        run.kill(signal);
        const out = await within(run.done, 20_000, () => run.lines.join('\n'));
        expect(out.code, out.stderr).toBe(code);
        expect(events(out.stdout).at(-1)).toMatchObject({ type: 'end', outcome: 'interrupted' });
        expect(leftRunning(p.base)).toEqual([]);
      } finally {
        p.cleanup();
      }
    }
  });

  it('a PAUSE set by a person ends loki run with its code before any session', () => {
    const p = makeProject();
    try {
      const bin = standIn(p, 'exit 9');
      const env = envWith(p, bin);
      // The run is started first (PAUSE then holds it), as a person would: loki run, then loki pause.
      expect(spawnSync(process.execPath, [LOKI, 'pause'], { cwd: p.root, env }).status).toBe(0);
      const r = spawnSync(process.execPath, [LOKI, 'run', 'prd.md'], { cwd: p.root, env, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(4);
      expect(r.stdout).toMatch(/Started run r-/);
      expect(r.stdout).toMatch(/loki run ended: PAUSE is set/);
      expect(r.stdout).not.toMatch(/session 1/);
    } finally {
      p.cleanup();
    }
  });
});

const why = cannotRun('claude');
describe.skipIf(why !== undefined)(`loki run driving Claude Code${why ? ` (skipped: ${why})` : ''}`, () => {
  beforeAll(async () => {
    await settledDist();
  });

  describe('a fresh project, one session killed mid-task', () => {
    let p: Project;
    let out: { code: number | null; stdout: string; stderr: string };
    let ev: Event[];
    beforeAll(async () => {
      p = makeProject();
      let hostPid: number | null = null;
      let killed = false;
      // The host is killed as it starts the second task's work: a session lost with a task claimed.
      const api = await scriptedApi(p, { fromStatus: true }, (answer) => {
        if (!killed && hostPid && answer.calls?.some((c) => JSON.stringify(c.args).includes('subtract.js'))) {
          killed = true;
          process.kill(hostPid, 'SIGKILL');
        }
      });
      try {
        const h = await offlineHost('claude', p, api);
        const run = loki(['run', 'prd.md', '--json', '--', ...h.args], p.root, {
          ...h.env,
          PATH: `${HOST_BINS_DIR}:${h.env.PATH}`,
        });
        void run.line((l) => {
          const e = JSON.parse(l) as Event;
          if (e.type === 'session') hostPid = e.pid as number;
          return false;
        });
        out = await run.done;
      } finally {
        await api.close();
      }
      ev = events(out.stdout);
    }, 150_000);
    afterAll(() => p?.cleanup());

    it('ends COMPLETE with exit 0 and the receipt VERIFIED', () => {
      expect(out.code, out.stderr + out.stdout.slice(-3000)).toBe(EXIT.complete);
      expect(storedOutcome(p)).toMatchObject({ runStatus: 'completed', receipt: 'VERIFIED' });
      expect(ev.at(-1)).toMatchObject({ type: 'end', outcome: 'complete', exitCode: 0 });
    });

    it('the killed session is restarted and the next one resumes its task', () => {
      const ends = ev.filter((e) => e.type === 'session-end');
      expect(ends[0]).toMatchObject({ how: 'crashed', signal: 'SIGKILL' });
      expect(ev.find((e) => e.type === 'restart')).toMatchObject({ inSeconds: 1, failures: 1 });
      expect(ev.filter((e) => e.type === 'session').length).toBeGreaterThanOrEqual(2);
      const t2 = ev.filter((e) => e.id === 't2' && e.type === 'task-claimed');
      expect(t2.length).toBe(2);
    });

    it('--json streams the run as it happened, read from its state', () => {
      for (const e of ev) expect(typeof e.type === 'string' && !Number.isNaN(Date.parse(e.at))).toBe(true);
      const types = ev.map((e) => e.type);
      expect(types[0]).toBe('start');
      expect(ev.filter((e) => e.type === 'task-completed').map((e) => e.id)).toEqual(['t1', 't2', 't3', 't4']);
      expect(ev).toContainEqual(expect.objectContaining({ type: 'phase', to: 'QA' }));
      expect(ev).toContainEqual(expect.objectContaining({ type: 'verify', blocking: 0 }));
      expect(ev).toContainEqual(expect.objectContaining({ type: 'council-outcome', state: 'approved' }));
      expect(ev).toContainEqual(expect.objectContaining({ type: 'complete', headline: 'VERIFIED' }));
      // In order: claimed before completed, the council before completion.
      expect(types.indexOf('task-claimed')).toBeLessThan(types.indexOf('task-completed'));
      expect(types.indexOf('council-outcome')).toBeLessThan(types.indexOf('complete'));
    });

    it("the start is a person's action in the audit log; nothing is left running", () => {
      const r = spawnSync(process.execPath, [LOKI, 'audit', 'export'], { cwd: p.root, env: envWith(p, null) });
      const first = JSON.parse(String(r.stdout).split('\n')[0]!) as { action: string; actor: string };
      expect(first.action).toBe('run.start');
      expect(first.actor).toMatch(/^person:.+ via cli:\d+$/);
      expect(leftRunning(p.base)).toEqual([]);
    });
  });

  it('--budget ends the run at the spend the hooks measure, with the limit named, and ends the session at once', async () => {
    const p = makeProject();
    const api = await scriptedApi(p, { fromStatus: true });
    try {
      const h = await offlineHost('claude', p, api);
      const run = loki(['run', 'prd.md', '--budget', '0.01', '--json', '--', ...h.args], p.root, {
        ...h.env,
        PATH: `${HOST_BINS_DIR}:${h.env.PATH}`,
      });
      const out = await within(run.done, 60_000, () => run.lines.join('\n'));
      expect(out.code, out.stderr + out.stdout.slice(-2000)).toBe(EXIT.limit);
      const ev = events(out.stdout);
      expect(ev).toContainEqual(expect.objectContaining({ type: 'usage' }));
      expect(ev.at(-1)).toMatchObject({ type: 'end', outcome: 'limit' });
      expect(String(ev.at(-1)!.reason)).toMatch(/^budget \(\$0\.01\) reached: \$\d+\.\d\d spent$/);
      // Left as it was, to resume with a larger budget.
      expect(storedOutcome(p).runStatus).toBe('active');
      expect(leftRunning(p.base)).toEqual([]);
    } finally {
      await api.close();
      p.cleanup();
    }
  }, 90_000);

  it('`loki stop` from another terminal ends the run with the STOP code', async () => {
    const p = makeProject();
    const api = await scriptedApi(p, { fromStatus: true });
    try {
      const h = await offlineHost('claude', p, api);
      const env = { ...h.env, PATH: `${HOST_BINS_DIR}:${h.env.PATH}` };
      const run = loki(['run', 'prd.md', '--', ...h.args], p.root, env);
      await within(
        run.line((l) => /completed t1/.test(l)),
        60_000,
        () => run.lines.join('\n'),
      );
      const stop = spawnSync(process.execPath, [LOKI, 'stop'], { cwd: p.root, env, encoding: 'utf8' });
      expect(stop.status).toBe(0);
      const out = await within(run.done, 60_000, () => run.lines.join('\n'));
      expect(out.code, out.stderr + out.stdout).toBe(EXIT.stop);
      expect(out.stdout).toMatch(/STOP \(/);
      expect(out.stdout).toMatch(/loki run ended: STOP is set/);
      expect(storedOutcome(p).runStatus).not.toBe('completed');
      expect(leftRunning(p.base)).toEqual([]);
    } finally {
      await api.close();
      p.cleanup();
    }
  }, 90_000);
});

/**
 * One honest `loki run` in a real host: a fresh project to COMPLETE, exit 0, VERIFIED, with the events in order and
 * nothing left running. `hostArgs` names the host, or not (Codex is found as the one installed and registered).
 */
async function runToVerified(host: 'codex' | 'cline', hostArgs: string[], timeoutMs: number): Promise<void> {
  await settledDist();
  const p = makeProject();
  const api = await scriptedApi(p, { fromStatus: true });
  try {
    const h = await offlineHost(host, p, api);
    const run = loki(['run', 'prd.md', ...hostArgs, '--json', '--', ...h.args], p.root, {
      ...h.env,
      PATH: `${HOST_BINS_DIR}:${h.env.PATH}`,
    });
    const out = await within(run.done, timeoutMs, () => run.lines.join('\n'));
    expect(out.code, out.stderr + out.stdout.slice(-3000)).toBe(EXIT.complete);
    const ev = events(out.stdout);
    expect(ev.find((e) => e.type === 'start')).toMatchObject({ host });
    expect(ev).toContainEqual(expect.objectContaining({ type: 'complete', headline: 'VERIFIED' }));
    expect(storedOutcome(p)).toMatchObject({ runStatus: 'completed', receipt: 'VERIFIED' });
    expect(leftRunning(p.base)).toEqual([]);
  } finally {
    await api.close();
    p.cleanup();
  }
}

const whyCodex = cannotRun('codex');
describe.skipIf(whyCodex !== undefined)(`loki run driving Codex${whyCodex ? ` (skipped: ${whyCodex})` : ''}`, () => {
  it('codex exec with the server and the skill takes a fresh project to COMPLETE, exit 0, VERIFIED', async () => {
    // The host is not named: codex is the one installed and registered here (claude is on PATH, not registered).
    await runToVerified('codex', [], 100_000);
  }, 120_000);
});

const whyCline = cannotRun('cline');
describe.skipIf(whyCline !== undefined)(`loki run driving Cline${whyCline ? ` (skipped: ${whyCline})` : ''}`, () => {
  it('cline --json with the server and the skill takes a fresh project to COMPLETE, exit 0, VERIFIED', async () => {
    await runToVerified('cline', ['--host', 'cline'], 110_000);
  }, 130_000);
});
