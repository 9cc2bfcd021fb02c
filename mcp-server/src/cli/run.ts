/**
 * `loki run [SPEC]` (alias `loki start`): start or resume the run as a person, then drive the host agent headless
 * until the run ends (run/drive.ts does the work). Prints the run's progress as it happens, or with --json one
 * event per line; the exit code says how the run ended (RUN_EXIT).
 */
import os from 'node:os';
import { CliError, UsageError } from '../errors.js';
import type { Project } from '../project.js';
import { RUN_EXIT, driveRun, type DriveEvent } from '../run/drive.js';
import { HOSTS, type Host } from '../run/host-launch.js';
import { didYouMean } from './commands.js';
import { paint, print, type Paint } from './output.js';

export const RUN_USAGE =
  'usage: loki run [SPEC] [--host claude|codex|cline] [--max-sessions N] [--minutes N] [--budget USD] ' +
  '[--session-minutes N] [--restart] [--json] [-- HOST-ARGS...]';

export interface RunFlags {
  host?: string | undefined;
  maxSessions?: string | undefined;
  minutes?: string | undefined;
  budget?: string | undefined;
  sessionMinutes?: string | undefined;
  restart: boolean;
  json: boolean;
}

/** A positive number from an option, or a usage error naming it. */
function positive(name: string, value: string | undefined, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new CliError(`--${name} takes a positive ${integer ? 'whole number' : 'number'}, not "${value}"`, 2);
  return n;
}

export async function runCommand(
  project: Project,
  rest: string[],
  hostArgs: string[],
  flags: RunFlags,
): Promise<number> {
  if (rest.length > 1) throw new CliError(RUN_USAGE, 2);
  if (flags.restart && rest[0] === undefined) throw new CliError('--restart starts a new run: name its spec', 2);
  if (flags.host !== undefined && !(HOSTS as readonly string[]).includes(flags.host))
    throw new CliError(`--host is one of ${HOSTS.join(', ')}, not "${flags.host}"${didYouMean(flags.host, HOSTS)}`, 2);
  const options = {
    spec: rest[0],
    restart: flags.restart || undefined,
    host: flags.host as Host | undefined,
    maxSessions: positive('max-sessions', flags.maxSessions, true),
    minutes: positive('minutes', flags.minutes, false),
    budgetUsd: positive('budget', flags.budget, false),
    sessionMinutes: positive('session-minutes', flags.sessionMinutes, false) ?? 30,
  };
  const abort = new AbortController();
  let interruptedBy: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C while the host winds down is the same request: the host's group is being ended already.
    if (interruptedBy) return;
    interruptedBy = signal;
    if (!flags.json)
      process.stderr.write(`\n${paint('yellow', `loki run: ${signal}, ending the host session...`, process.stderr)}\n`);
    abort.abort();
  };
  // SIGHUP too: a closed terminal must not leave the host running in its own process group.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    const end = await driveRun(
      project,
      { ...options, extra: hostArgs, env: process.env, home: os.homedir(), signal: abort.signal },
      flags.json ? (e) => print(JSON.stringify(e)) : (e) => print(describe(e)),
    );
    // Ended by a signal: the conventional 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    if (end.outcome === 'interrupted' && interruptedBy === 'SIGTERM') return 143;
    if (end.outcome === 'interrupted' && interruptedBy === 'SIGHUP') return 129;
    return end.exitCode;
  } catch (err) {
    // loki_start's refusals name its arguments; a person has SPEC and --restart.
    if (err instanceof UsageError) throw new CliError(forPerson(err.message), 2);
    throw err;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

const START_WORDS: [RegExp, string][] = [
  [
    /give `spec` \(a path inside the project[^)]*\) or `specText` \(the brief itself\)/,
    'name the spec: `loki run docs/prd.md`',
  ],
  [
    /omit `spec` to resume it, or pass `restart: true` to archive it and start a new run/,
    'run `loki run` without a spec to resume it, or `loki run SPEC --restart` to archive it and start a new one',
  ],
  [/give `spec` or `specText` to start a new one/, 'name a spec to start a new one: `loki run SPEC`'],
];

function forPerson(message: string): string {
  return START_WORDS.reduce((m, [re, to]) => m.replace(re, to), message);
}

const clock = (iso: string) => paint('dim', iso.slice(11, 19));
const money = (n: number) => `$${n.toFixed(2)}`;

/** One event as a line for a person. */
export function describe(e: DriveEvent): string {
  const line = (text: string, style?: Paint) => `${clock(e.at)} ${style ? paint(style, text) : text}`;
  const task = (id: string, title: string | null) => `${id}${title ? ` "${title}"` : ''}`;
  switch (e.type) {
    case 'start':
      return line(
        `${e.resumed ? 'Resumed' : 'Started'} run ${e.runId} (${e.tier} tier${e.spec ? `, ${e.spec}` : ''}): phase ${e.phase}` +
          `${e.queued ? `, ${e.queued} task(s) queued` : ''}; driving ${e.host}`,
        'bold',
      );
    case 'session':
      return line(`session ${e.n}: ${e.host} started${e.pid ? ` (pid ${e.pid})` : ''}`, 'dim');
    case 'session-end': {
      const how = {
        ended: 'ended',
        halted: 'ended by loki run (the run ended)',
        crashed: `crashed (${e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`})`,
        'timed-out': 'ran past --session-minutes and was ended',
        'no-progress': 'ended without a loki call',
      }[e.how];
      const tail = e.tail ? `\n${paint('dim', e.tail.split('\n').slice(-5).join('\n'))}` : '';
      return (
        line(`session ${e.n} ${how} after ${e.seconds}s`, e.how === 'ended' || e.how === 'halted' ? 'dim' : 'yellow') +
        tail
      );
    }
    case 'restart':
      return line(`restarting in ${e.inSeconds}s (${e.failures} failed session(s) in a row: ${e.why})`, 'yellow');
    case 'warning':
      return line(`warning: ${e.message}`, 'yellow');
    case 'phase':
      return line(`phase ${e.from} -> ${e.to}${e.auto ? ' (nothing to do there)' : ''}`, 'bold');
    case 'task-claimed':
      return line(`claimed ${task(e.id, e.title)}${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
    case 'task-completed':
      return line(`completed ${task(e.id, e.title)}`, 'green');
    case 'task-failed':
      return line(
        `${e.deadLetter ? 'dead-lettered' : 'failed'} ${task(e.id, e.title)}${e.error ? `: ${e.error}` : ''}`,
        'red',
      );
    case 'verify': {
      const checks = Object.entries(e.verdicts).map(([k, v]) => `${k} ${v}`);
      return line(
        `verify ${e.id}: ${checks.join(', ') || 'no checks'}${e.blocking ? `; ${e.blocking} blocking finding(s)` : ''}`,
        e.blocking ? 'red' : 'green',
      );
    }
    case 'checklist':
      return line(`checklist: ${e.passed} passed, ${e.failed} failed`, e.failed ? 'yellow' : undefined);
    case 'council-convened':
      return line(`council ${e.council} convened${e.size ? ` (${e.size} seats)` : ''}`);
    case 'council-vote':
      return line(`council ${e.council}: seat ${e.seat ?? '?'} voted`);
    case 'council-outcome':
      if (e.state === 'devils-advocate')
        return line(
          `council ${e.council}: unanimous (${e.approvals ?? '?'} approvals), the devil's advocate votes last`,
        );
      return line(
        `council ${e.council}: ${e.state}${e.approvals !== null ? ` (${e.approvals} approval(s))` : ''}` +
          `${e.reasons.length ? `: ${e.reasons[0]}` : ''}`,
        e.state === 'approved' ? 'green' : e.state === 'rejected' ? 'red' : undefined,
      );
    case 'completion-refused':
      return line(`completion refused${e.reason ? `: ${e.reason}` : ''}`, 'yellow');
    case 'complete':
      return line(
        `COMPLETE: ${e.headline ?? 'receipt written'}${e.receipt ? ` (${e.receipt})` : ''}`,
        e.headline === 'VERIFIED' ? 'green' : 'yellow',
      );
    case 'run-stopped':
      return line(`the run stopped: ${e.reason ?? 'no reason given'}`, 'yellow');
    case 'signal':
      return line(`${e.signal.toUpperCase()} (${e.by})`, 'yellow');
    case 'directive':
      return line(`directive ${e.status}`);
    case 'budget-exceeded':
      return line(
        `budget exceeded${e.spentUsd !== null ? `: ${money(e.spentUsd)}` : ''}${e.limitUsd !== null ? ` of ${money(e.limitUsd)}` : ''}`,
        'red',
      );
    case 'usage':
      return line(`spent ${money(e.costUsd)}, ${e.contextTokens} tokens in context`, 'dim');
    case 'end':
      return line(
        `loki run ended: ${e.reason} (exit ${e.exitCode}${e.sessions ? `, ${e.sessions} session(s)` : ''})`,
        e.exitCode === RUN_EXIT.complete ? 'green' : 'yellow',
      );
  }
}
