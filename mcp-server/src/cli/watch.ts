/**
 * `loki status --watch`: the run as it moves. Polls a cheap change stamp every second (run/watch.ts) and rebuilds
 * the view only when it changed. On a terminal the screen is redrawn in place, in colour unless NO_COLOR; in a
 * pipe or a log one line is printed per change (never escape codes), so `loki status --watch | tee run.log` is a
 * timeline. With `--json`, one JSON object per change instead (what `loki status --json` prints, with the time and
 * the tasks in progress), for a script to follow. Ends on Ctrl-C, or by itself once the run is no longer active
 * (completed or stopped). Read-only, as `loki status` is: it never counts a turn.
 */
import type { Project } from '../project.js';
import { briefing, type Briefing } from '../run/briefing.js';
import { changeStamp } from '../run/watch.js';
import { peekRun } from '../run/state.js';
import type { Task } from '../domain/tasks.js';
import { paint, print, printJson, useColour } from './output.js';

const POLL_MS = 1000;

interface View {
  b: Briefing;
  held: Task[];
}

export async function watchCommand(project: Project, json = false): Promise<number> {
  // A script reading JSON wants lines, never a redrawn screen.
  const tty = Boolean(process.stdout.isTTY) && !json;
  let last = '';
  let lastLine = '';
  return new Promise<number>((resolve, reject) => {
    let busy = false;
    const stop = () => {
      clearInterval(timer);
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onInterrupt);
      if (tty) process.stdout.write('\u001b[?25h');
    };
    // Ctrl-C (or a kill) is how a person leaves: not an error.
    const onInterrupt = () => {
      stop();
      if (tty) process.stdout.write('\n');
      resolve(0);
    };
    process.on('SIGINT', onInterrupt);
    process.on('SIGTERM', onInterrupt);
    const tick = async () => {
      const stamp = changeStamp(project);
      if (stamp === last) return;
      last = stamp;
      const view = await look(project);
      if (json) {
        const { nextCall: _call, ...status } = view.b;
        printJson({ at: new Date().toISOString(), ...status, held: view.held }, true);
      } else if (tty) {
        process.stdout.write(`\u001b[?25l\u001b[H\u001b[2J${screen(view)}\n`);
      } else {
        const line = oneLine(view);
        if (line !== lastLine) print(`${new Date().toISOString().slice(11, 19)} ${line}`);
        lastLine = line;
      }
      const status = view.b.run?.status;
      if (status && status !== 'active') {
        if (tty) print(`\nThe run is ${status}: watching ends.`);
        stop();
        resolve(0);
      }
    };
    const poll = () => {
      // A poll still building its view (git can take a moment) is not overlapped by the next.
      if (busy) return;
      busy = true;
      tick()
        .catch((err: unknown) => {
          stop();
          reject(err);
        })
        .finally(() => {
          busy = false;
        });
    };
    const timer: NodeJS.Timeout = setInterval(poll, POLL_MS);
    poll();
  });
}

async function look(project: Project): Promise<View> {
  const b = await briefing(project, undefined, { peek: true });
  const held =
    b.queue && b.queue.inProgress > 0 && peekRun(project.existingStore())
      ? project.tasks().list({ status: ['in-progress'] }).tasks
      : [];
  return { b, held };
}

function clock(iso: string): string {
  return iso.slice(11, 16);
}

function taskCounts(b: Briefing): string {
  if (!b.queue || b.queue.total === 0) return 'none';
  const c = b.queue.counts;
  return [
    `${c.pending} pending`,
    `${c['in-progress']} in progress`,
    `${c.completed} completed`,
    ...(c.failed ? [`${c.failed} failed`] : []),
    ...(c.blocked ? [`${c.blocked} blocked`] : []),
    ...(c['dead-letter'] ? [`${c['dead-letter']} dead-letter`] : []),
  ].join(', ');
}

function signalsOf(b: Briefing): string {
  const s = [
    b.signals.pause && 'PAUSE',
    b.signals.stop && 'STOP',
    b.signals.humanInput.status !== 'none' && `HUMAN_INPUT (${b.signals.humanInput.status})`,
  ].filter(Boolean);
  return s.length ? s.join(', ') : 'none';
}

function verificationOf(b: Briefing): string | null {
  const v = b.trust?.verification;
  return v ? `${v.id} ${v.tests}${v.blocking ? `, ${v.blocking} blocking` : ''} (${clock(v.at)})` : null;
}

function councilOf(b: Briefing): string | null {
  const c = b.trust?.council;
  return c ? `${c.id} ${c.state}, ${c.cast} of ${c.size} voted` : null;
}

/** One line per change, for a pipe or a log: the same facts as the screen, no escape codes. */
function oneLine({ b, held }: View): string {
  if (!b.run) return 'no run yet (waiting for one to start)';
  const r = b.run;
  const parts = [
    `${r.runId} ${r.status} ${r.phase} (${r.tier}) turn ${r.iteration}/${r.maxIterations}`,
    `tasks: ${taskCounts(b)}`,
    ...held.map((t) => `${t.id} in progress by ${t.lease?.agent ?? '?'} until ${clock(t.lease?.expiresAt ?? '')}`),
    ...(verificationOf(b) ? [`verify ${verificationOf(b)}`] : []),
    ...(councilOf(b) ? [`council ${councilOf(b)}`] : []),
    `signals: ${signalsOf(b)}`,
    `next: ${b.next.split('\n')[0]}`,
  ];
  return parts.join(' | ');
}

/** The whole screen, redrawn on each change. */
function screen({ b, held }: View): string {
  const colour = useColour(process.stdout);
  const lines = [`${paint('bold', 'loki status --watch')}  ${b.project}  ${paint('dim', '(Ctrl-C to leave)')}`, ''];
  if (!b.run) {
    lines.push('No run yet: waiting for one to start (`loki run`, or "Loki Mode" in your agent).');
    return lines.join('\n');
  }
  const r = b.run;
  const at = r.phases.indexOf(r.phase);
  const bar = [...r.phases, ...(r.phase === 'GROWTH' ? ['GROWTH' as const] : [])]
    .map((p, i) =>
      p === r.phase
        ? paint('bold', colour ? ` ${p} ` : `[${p}]`)
        : i < at || r.phase === 'GROWTH'
          ? paint('green', p)
          : paint('dim', p),
    )
    .join(paint('dim', ' > '));
  lines.push(`Run      ${r.runId}  ${r.status === 'active' ? paint('green', r.status) : paint('yellow', r.status)}`);
  lines.push(`Phase    ${bar}`);
  lines.push(`Tier     ${r.tier}    Turn ${r.iteration} of ${r.maxIterations}`);
  lines.push(`Tasks    ${taskCounts(b)}`);
  for (const t of held) {
    const expired = t.lease && Date.parse(t.lease.expiresAt) <= Date.now();
    lines.push(
      `         ${paint('yellow', t.id)} ${t.title}  ${paint('dim', `by ${t.lease?.agent ?? '?'}, lease until ${clock(t.lease?.expiresAt ?? '')}${expired ? ' (expired)' : ''}`)}`,
    );
  }
  const v = b.trust?.verification;
  lines.push(
    `Verify   ${v ? (v.tests === 'pass' && v.blocking === 0 ? paint('green', verificationOf(b)!) : paint('red', verificationOf(b)!)) : 'none yet'}`,
  );
  const c = b.trust?.council;
  lines.push(
    `Council  ${c ? (c.state === 'approved' ? paint('green', councilOf(b)!) : c.state === 'rejected' ? paint('red', councilOf(b)!) : councilOf(b)!) : 'none yet'}`,
  );
  if (b.trust?.checklist) {
    const k = b.trust.checklist;
    lines.push(
      `Checks   ${k.met} of ${k.total} checklist items met, ${k.open} open, ${k.failing} failing, ${k.waived} waived`,
    );
  }
  const sig = signalsOf(b);
  lines.push(`Signals  ${sig === 'none' ? sig : paint('yellow', sig)}`);
  for (const p of b.problems.slice(0, 5)) lines.push(`${paint('red', 'Problem')}  ${p}`);
  lines.push('', `Next     ${b.next}`);
  return lines.join('\n');
}
