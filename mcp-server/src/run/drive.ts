/**
 * `loki run`: a person starts (or resumes) the run, then the host agent is driven headless, one session after
 * another, until the run ends. Each session starts from the briefing (SESSION_PROMPT), so it does not matter
 * whether the last one completed its work, ended its turn early (Codex and Cline have no Stop hook to keep them
 * going), crashed, or hung. What happens is read from the run's own records (progress.ts), never parsed from the
 * host's output.
 *
 * The host runs in a process group of its own (spawned detached, with an argument array, never a shell), so its
 * MCP server, shells and test runs all go with it: on a timeout, at the end of the run, on Ctrl-C or SIGTERM the
 * whole group is sent SIGTERM, then SIGKILL. Nothing is left running.
 */
import { spawn } from 'node:child_process';
import type { Project } from '../project.js';
import { VERSION } from '../version.js';
import { beginRun, type BeginResult } from './begin.js';
import { readHookState } from './hook-state.js';
import {
  SESSION_PROMPT,
  findOnPath,
  defaultHost,
  hostLaunch,
  registeredWith,
  type Host,
  type HostLaunch,
} from './host-launch.js';
import { personAt } from './person.js';
import { ProgressWatch, type ProgressEvent } from './progress.js';
import { endGoneSessions, newSessionIdentity, stopSessionSync } from './sessions.js';
import { readMarkers } from './signals.js';
import { readRun } from './state.js';

/** How a `loki run` ended, as its exit code (documented in README.md and docs/hosts.md). */
export const RUN_EXIT = {
  complete: 0,
  /** 1 and 2 keep their meaning for every loki command: an error, a usage error. */
  stop: 3,
  pause: 4,
  limit: 5,
  hostMissing: 6,
  hostFailing: 7,
  interrupted: 130,
} as const;
export type RunOutcome = keyof typeof RUN_EXIT;

export type DriveEvent = { at: string } & (
  | ProgressEvent
  | {
      type: 'start';
      runId: string;
      resumed: boolean;
      spec: string | null;
      tier: string;
      phase: string;
      queued: number;
      host: Host;
    }
  | { type: 'session'; n: number; host: Host; pid: number | null }
  | {
      type: 'session-end';
      n: number;
      code: number | null;
      signal: string | null;
      seconds: number;
      /** ended: by itself; crashed: non-zero exit or killed; timed-out; halted: loki run ended it with the run */
      how: 'ended' | 'crashed' | 'timed-out' | 'halted' | 'no-progress';
      tail: string | null;
    }
  | { type: 'restart'; inSeconds: number; failures: number; why: string }
  | { type: 'warning'; message: string }
  | { type: 'end'; outcome: RunOutcome; exitCode: number; reason: string; runId: string | null; sessions: number }
);

type Emit = (e: DriveEvent) => void;

export interface DriveOptions {
  spec?: string | undefined;
  /** Archive the active run and start `spec` (loki_start's `restart`). */
  restart?: boolean | undefined;
  host?: Host | undefined;
  maxSessions?: number | undefined;
  minutes?: number | undefined;
  budgetUsd?: number | undefined;
  /** A session still running after this long is taken for hung: ended and restarted. */
  sessionMinutes: number;
  /** Passed to the host after loki's own arguments (`loki run -- <args>`). */
  extra: readonly string[];
  env: NodeJS.ProcessEnv;
  home: string;
  /** Ctrl-C or SIGTERM: end the session and the run driving. */
  signal: AbortSignal;
  pollMs?: number;
}

/** Consecutive failed sessions (crashed, hung, or ended having done nothing) before the host is given up on. */
export const MAX_FAILURES = 3;
/** Time a session gets to wind down by itself once the run is over (COMPLETE, STOP, PAUSE, a limit). */
const WIND_DOWN_MS = 20_000;
const TERM_GRACE_MS = 3_000;
const TAIL_BYTES = 4_000;

/** 1 s, 2 s, 4 s, ... at most 30 s, after the nth failure in a row. */
export function backoffMs(failures: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, failures - 1));
}

interface End {
  outcome: RunOutcome;
  reason: string;
}

export async function driveRun(project: Project, opts: DriveOptions, emit: Emit): Promise<End & { exitCode: number }> {
  const now = () => new Date().toISOString();
  const say = (e: DistributiveOmit<DriveEvent, 'at'>) => emit({ at: now(), ...e } as DriveEvent);
  let sessions = 0;
  let runId: string | null = null;
  const finish = (end: End) => {
    const exitCode = RUN_EXIT[end.outcome];
    say({ type: 'end', ...end, exitCode, runId, sessions });
    return { ...end, exitCode };
  };

  const host = opts.host ?? defaultHost(project.root, opts.env, opts.home);
  const bin = findOnPath(host, opts.env);
  if (!bin)
    return finish({
      outcome: 'hostMissing',
      reason: `${host} is not installed (no \`${host}\` on PATH)${opts.host ? '' : '; name another with --host'}`,
    });
  const adHoc = host === 'claude' && opts.extra.some((a) => /^--(plugin-dir|mcp-config)(=|$)/.test(a));
  if (!adHoc && !registeredWith(host, project.root, opts.env, opts.home))
    say({
      type: 'warning',
      message: `the loki server is not registered with ${host} for this project: run \`loki install ${host}\``,
    });

  // A STOP left from before is the person's standing word: said as the STOP it is, before anything is written.
  if (readMarkers(project.existingStore()).stop)
    return finish({ outcome: 'stop', reason: '.loki/STOP is set: `loki resume` clears it' });

  const from = project.existingStore()?.audit.count() ?? 0;
  // The person's start, audited as theirs (`person:<user> via cli:<pid>`, as a waiver is), by the same rules as
  // an agent's loki_start.
  const who = newSessionIdentity({ name: 'loki run', version: VERSION });
  const begun: BeginResult = await beginRun(project, { spec: opts.spec, restart: opts.restart }, who, {
    actor: personAt(project, 'start a run').actor,
  });
  // This process drives sessions but is not one: it holds no task and sends no heartbeat.
  stopSessionSync(project.existingStore(), who, 'loki run: the run was started by a person; host sessions do the work');
  runId = begun.run.runId;
  say({
    type: 'start',
    runId,
    resumed: begun.resumed,
    spec: begun.run.spec?.path ?? null,
    tier: begun.run.tier,
    phase: begun.run.phase,
    queued: begun.tasks.queued,
    host,
  });
  const watch = new ProgressWatch(project, from, project.actor);
  const flush = () => {
    for (const e of watch.poll()) say(e);
    const u = watch.usage(runId!);
    if (u) say(u);
  };
  const started = Date.now();
  const deadline = opts.minutes !== undefined ? started + opts.minutes * 60_000 : Infinity;

  const whyEnd = (): End | undefined => {
    const store = project.existingStore();
    const run = readRun(store);
    const markers = readMarkers(store);
    if (run?.status === 'completed') return { outcome: 'complete', reason: 'the run is COMPLETE' };
    if (markers.stop) return { outcome: 'stop', reason: 'STOP is set (`loki resume` clears it)' };
    if (markers.pause) return { outcome: 'pause', reason: 'PAUSE is set (`loki resume` clears it)' };
    if (run?.status === 'stopped') {
      const why = run.stopReason ?? 'stopped';
      return /^iteration limit/.test(why)
        ? { outcome: 'limit', reason: why }
        : { outcome: 'stop', reason: `the run stopped: ${why}` };
    }
    if (opts.budgetUsd !== undefined) {
      const spent = readHookState(store, runId).usage.costUsd;
      if (spent >= opts.budgetUsd)
        return { outcome: 'limit', reason: `budget ($${opts.budgetUsd}) reached: $${spent.toFixed(2)} spent` };
    }
    if (Date.now() >= deadline) return { outcome: 'limit', reason: `time limit (${opts.minutes} min) reached` };
    return undefined;
  };

  let failures = 0;
  let lastFailure = '';
  for (;;) {
    flush();
    if (opts.signal.aborted) return finish({ outcome: 'interrupted', reason: 'interrupted' });
    const end = whyEnd();
    if (end) return finish(end);
    if (failures >= MAX_FAILURES)
      return finish({
        outcome: 'hostFailing',
        reason: `${host} failed ${failures} sessions in a row (last: ${lastFailure})`,
      });
    if (opts.maxSessions !== undefined && sessions >= opts.maxSessions)
      return finish({ outcome: 'limit', reason: `session limit (${opts.maxSessions}) reached` });
    if (failures > 0) {
      const wait = backoffMs(failures);
      say({ type: 'restart', inSeconds: wait / 1000, failures, why: lastFailure });
      await sleep(Math.min(wait, Math.max(0, deadline - Date.now())), opts.signal);
      flush();
      if (opts.signal.aborted) return finish({ outcome: 'interrupted', reason: 'interrupted' });
      const meanwhile = whyEnd();
      if (meanwhile) return finish(meanwhile);
    }
    sessions += 1;
    const spent = readHookState(project.existingStore(), runId).usage.costUsd;
    const launch = hostLaunch(host, bin, {
      root: project.root,
      prompt: SESSION_PROMPT,
      budgetUsd: opts.budgetUsd !== undefined ? Math.max(0.01, opts.budgetUsd - spent) : undefined,
      extra: opts.extra,
    });
    if (sessions === 1)
      for (const u of launch.unsupported) say({ type: 'warning', message: `${host} does not take ${u}` });
    const s = await runSession(launch, project.root, opts, {
      onStart: (pid) => say({ type: 'session', n: sessions, host, pid }),
      tick: () => {
        flush();
        const end = whyEnd();
        // A limit ends the session at once (more spend or time is what it forbids); the other endings are said to
        // the agent at its next loki call, and it winds down by itself.
        return end === undefined ? 'running' : end.outcome === 'limit' ? 'halt' : 'wind-down';
      },
      deadline,
    });
    const store = project.existingStore();
    if (store) await endGoneSessions(store);
    flush();
    const activity = watch.takeActivity();
    const how: Extract<DriveEvent, { type: 'session-end' }>['how'] = s.halted
      ? 'halted'
      : s.timedOut
        ? 'timed-out'
        : s.code !== 0
          ? 'crashed'
          : activity === 0
            ? 'no-progress'
            : 'ended';
    say({
      type: 'session-end',
      n: sessions,
      code: s.code,
      signal: s.signal,
      seconds: Math.round((Date.now() - s.startedAt) / 100) / 10,
      how,
      tail: how === 'crashed' || how === 'timed-out' || how === 'no-progress' ? s.tail || null : null,
    });
    if (s.aborted) return finish({ outcome: 'interrupted', reason: 'interrupted' });
    if (how === 'crashed' || how === 'timed-out' || how === 'no-progress') {
      failures += 1;
      lastFailure =
        how === 'timed-out'
          ? `no end after ${opts.sessionMinutes} min`
          : how === 'no-progress'
            ? 'it ended without a loki call'
            : s.signal
              ? `killed by ${s.signal}`
              : `exit code ${s.code}`;
    } else failures = 0;
  }
}

interface SessionResult {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** loki run ended it: the run was over and the session did not end by itself in time. */
  halted: boolean;
  aborted: boolean;
  startedAt: number;
  tail: string;
}

function runSession(
  launch: HostLaunch,
  root: string,
  opts: DriveOptions,
  hooks: { onStart: (pid: number | null) => void; tick: () => 'running' | 'wind-down' | 'halt'; deadline: number },
): Promise<SessionResult> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    let tail = '';
    const keep = (d: Buffer) => {
      tail = (tail + d.toString('utf8')).slice(-TAIL_BYTES);
    };
    const child = spawn(launch.bin, launch.args, {
      cwd: root,
      env: { ...opts.env, ...launch.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let halted = false;
    let aborted = false;
    let endingSince: number | null = null;
    let killing = false;
    const pid = child.pid ?? null;
    hooks.onStart(pid);
    const kill = () => {
      if (killing || pid === null) return;
      killing = true;
      killGroup(pid, 'SIGTERM');
      setTimeout(() => killGroup(pid, 'SIGKILL'), TERM_GRACE_MS).unref();
    };
    const onAbort = () => {
      aborted = true;
      kill();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const timeoutAt = startedAt + opts.sessionMinutes * 60_000;
    const timer = setInterval(() => {
      const now = Date.now();
      if (now >= timeoutAt) {
        timedOut = true;
        kill();
      } else if (now >= hooks.deadline) {
        halted = true;
        kill();
      } else {
        const state = hooks.tick();
        if (state === 'halt') {
          halted = true;
          kill();
        } else if (state === 'wind-down') {
          // The run is over: the agent is told at its next loki call and ends by itself; past the wind-down it is
          // ended.
          endingSince ??= now;
          if (now - endingSince >= WIND_DOWN_MS) {
            halted = true;
            kill();
          }
        }
      }
    }, opts.pollMs ?? 1000);
    let finished = false;
    const done = async (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      opts.signal.removeEventListener('abort', onAbort);
      // What the host left in its group (its MCP server, a shell, a test run) goes too: TERM first, so a server
      // can record its session as stopped, then KILL whatever is still there.
      if (pid !== null) await endGroup(pid);
      if (error) tail = `${tail}\n${error.message}`.slice(-TAIL_BYTES);
      resolve({ code, signal, timedOut, halted, aborted, startedAt, tail: tail.trim() });
    };
    child.on('error', (err) => void done(null, null, err));
    child.on('close', (code, signal) => void done(code, signal));
  });
}

/** SIGTERM to the group, up to a second for it to go, then SIGKILL: it is gone when this resolves. */
async function endGroup(pid: number): Promise<void> {
  if (!killGroup(pid, 'SIGTERM')) return;
  for (let i = 0; i < 10 && groupAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  killGroup(pid, 'SIGKILL');
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    // The group is gone.
    return false;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
