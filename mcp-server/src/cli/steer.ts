/**
 * A person steering the run from the terminal (issue 20, item 3): `loki tasks add|edit|block|release|unblock`,
 * `loki checklist`, `loki waive item`, `loki phase advance|back` and `loki say`. Presentation only: parsing the
 * arguments and saying what happened. The rules and the audit entries (each the person's action) are the
 * services' (queue/steer.ts, trust/waivers.ts, run/phase.ts, run/directive.ts), shared with the MCP tools.
 */
import { PHASES, type Phase } from '../domain/phases.js';
import { PRIORITIES, TASK_LIMITS, type Priority, type Task, type TaskEdit } from '../domain/tasks.js';
import type { Project } from '../project.js';
import { addTasksAsPerson, editTaskAsPerson, steerTask } from '../queue/steer.js';
import { sendDirective } from '../run/directive.js';
import { movePhaseAsPerson } from '../run/phase.js';
import { getChecklist } from '../trust/checklist.js';
import { waiveItems } from '../trust/waivers.js';
import { describeWaiver } from '../domain/waivers.js';
import { forPeople, paint, print, printJson, table } from './output.js';
import { CliError } from '../errors.js';
import { scrubInput } from '../domain/secrets.js';

export interface TaskFields {
  title?: string | undefined;
  description?: string | undefined;
  priority?: string | undefined;
  phase?: string | undefined;
  depends?: string | undefined;
  acceptance?: string[] | undefined;
  reason?: string | undefined;
  json: boolean;
}

export const STEER_SUBCOMMANDS = ['add', 'edit', 'block', 'release', 'unblock'] as const;

export const TASKS_STEER_USAGE = `usage: loki tasks add TITLE [--description D] [--priority P] [--phase PHASE] [--depends ID,ID] [--acceptance A]...
       loki tasks edit ID [--title T] [--description D] [--priority P] [--phase PHASE] [--depends ID,ID] [--acceptance A]...
       loki tasks block ID --reason R | loki tasks release ID [--reason R] | loki tasks unblock ID`;

/** `loki tasks add|edit|block|release|unblock ...`. */
export async function steerTasksCommand(project: Project, given: string[], raw: TaskFields): Promise<number> {
  // A task's text is stored (records, audit): scrubbed of secrets first, as the task tools scrub theirs.
  const { args, o } = scrubbed({ args: given, o: raw });
  const [sub, ...rest] = args;
  const fieldsGiven = [o.title, o.description, o.priority, o.phase, o.depends, o.acceptance].some(
    (v) => v !== undefined,
  );
  if (sub === 'add') {
    // The title is every word after `add`, so `loki tasks add fix the login page` needs no quotes.
    const title = rest.join(' ').trim();
    if (!title || o.title !== undefined || o.reason !== undefined) throw new CliError(TASKS_STEER_USAGE, 2);
    const edit = taskFields(o);
    const r = await addTasksAsPerson(project, [{ ...edit, title: edit.title ?? title }]);
    const t = r.added[0];
    if (o.json) printJson(r);
    else if (!t) print(`An identical task exists already (${r.unchanged.join(', ')}): nothing added.`);
    else
      print(
        `Added ${t.id} (${t.priority}, ${t.phase}): ${t.title}\nThe agent can claim it; \`loki tasks\` lists the queue.`,
      );
    return 0;
  }
  const [id, ...extra] = rest;
  if (id === undefined || extra.length > 0) throw new CliError(TASKS_STEER_USAGE, 2);
  let task: Task;
  switch (sub) {
    case 'edit':
      if (!fieldsGiven || o.reason !== undefined)
        throw new CliError(`${TASKS_STEER_USAGE}\nedit: give at least one field to change`, 2);
      task = await editTaskAsPerson(project, id, taskFields(o));
      break;
    case 'block':
      if (fieldsGiven) throw new CliError(TASKS_STEER_USAGE, 2);
      if (o.reason === undefined)
        throw new CliError(`${TASKS_STEER_USAGE}\nblock: --reason is required (what the task waits for)`, 2);
      task = await steerTask(project, id, 'block', o.reason);
      break;
    case 'release':
    case 'unblock':
      if (fieldsGiven || (sub === 'unblock' && o.reason !== undefined)) throw new CliError(TASKS_STEER_USAGE, 2);
      task = await steerTask(project, id, sub, o.reason);
      break;
    default:
      throw new CliError(TASKS_STEER_USAGE, 2);
  }
  if (o.json) printJson(task);
  else print(steered(sub, task));
  return 0;
}

function steered(sub: string, t: Task): string {
  const last = t.attempts.at(-1);
  switch (sub) {
    case 'block':
      return `${t.id} is blocked (${t.blockedReason}); the agent will not claim it until \`loki tasks unblock ${t.id}\`.`;
    case 'release':
      return `${t.id} is pending again${last?.agent ? `: ${last.agent}'s claim ended (attempt #${last.n} released)` : ''}; the next claim takes it.`;
    case 'unblock':
      return `${t.id} is pending again; the agent can claim it.`;
    default:
      return `Updated ${t.id} (${t.status}, ${t.priority}, ${t.phase}): ${t.title}`;
  }
}

/** `value` with secrets replaced by [REDACTED:<kind>], saying so on stderr (as cli/main.ts does for --reason). */
function scrubbed<T>(value: T): T {
  const r = scrubInput(value, new Set());
  if (r.report.redacted > 0)
    process.stderr.write(
      `loki: ${r.report.redacted} value(s) looked like secrets (${r.report.kinds.join(', ')}) and are stored as [REDACTED:<kind>]\n`,
    );
  return r.value;
}

/** The fields given as options, checked as the task tools check them (domain/tasks.ts TASK_LIMITS). */
function taskFields(o: TaskFields): TaskEdit {
  const edit: TaskEdit = {};
  if (o.title !== undefined) edit.title = limited('--title', o.title.trim(), TASK_LIMITS.title, 1);
  if (o.description !== undefined) edit.description = limited('--description', o.description, TASK_LIMITS.description);
  if (o.priority !== undefined) {
    if (!(PRIORITIES as readonly string[]).includes(o.priority))
      throw new CliError(`--priority: "${o.priority}" is not a priority (${PRIORITIES.join(', ')})`, 2);
    edit.priority = o.priority as Priority;
  }
  if (o.phase !== undefined) edit.phase = phaseName(o.phase, '--phase');
  if (o.depends !== undefined) {
    const ids = o.depends
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (ids.length > TASK_LIMITS.dependencies)
      throw new CliError(`--depends: at most ${TASK_LIMITS.dependencies} ids`, 2);
    edit.dependencies = ids;
  }
  if (o.acceptance !== undefined) {
    if (o.acceptance.length > TASK_LIMITS.acceptance)
      throw new CliError(`--acceptance: at most ${TASK_LIMITS.acceptance} criteria`, 2);
    edit.acceptance = o.acceptance.map((a) => limited('--acceptance', a.trim(), TASK_LIMITS.acceptanceItem, 1));
  }
  return edit;
}

function limited(option: string, value: string, max: number, min = 0): string {
  if (value.length < min) throw new CliError(`${option} is empty`, 2);
  if (value.length > max) throw new CliError(`${option} is ${value.length} characters; at most ${max}`, 2);
  return value;
}

function phaseName(value: string, what: string): Phase {
  const upper = value.toUpperCase().replace(/-/g, '_');
  if (!(PHASES as readonly string[]).includes(upper))
    throw new CliError(`${what}: "${value}" is not a phase (${PHASES.join(', ')})`, 2);
  return upper as Phase;
}

/** `loki checklist [--json]`: the checklist as the builder sees it (held-out items only once revealed). */
export function checklistCommand(project: Project, json: boolean): number {
  const v = getChecklist(project);
  if (json) {
    printJson(v);
    return 0;
  }
  const c = v.counts;
  const lines = [
    `Checklist of ${v.runId}: ${c.total} item(s), ${c.met} met, ${c.open} open, ${c.failing} failing, ${c.waived} waived${v.revealed ? '' : ' (held-out items are shown once completion is claimed)'}`,
  ];
  if (v.items.length) {
    lines.push(
      table([
        ['id', 'status', 'check', 'text'],
        ...v.items.map((i) => [
          i.id,
          i.status === 'waived' ? `waived${i.waiver ? ` (${i.waiver})` : ''}` : i.status,
          i.check ? `${i.check.kind}${i.result ? (i.result.ok ? ' passes' : ' FAILS') : ''}` : '-',
          `${i.heldOut ? '[held out] ' : ''}${i.text}${i.status === 'waived' && i.note ? `  (${i.note})` : ''}`,
        ]),
      ]),
    );
    lines.push('', 'Waive an item with `loki waive item <id> --reason "..."` (shown in the receipt as your waiver).');
  }
  print(lines.join('\n'));
  return 0;
}

/** `loki waive item ID... --reason R`. */
export function waiveItemCommand(project: Project, ids: string[], reason: string, json: boolean): number {
  const w = waiveItems(project, ids, reason);
  if (json) printJson(w);
  else
    print(
      [
        `Recorded ${describeWaiver(w)}`,
        'The receipt shows it as your waiver, and the headline can be VERIFIED WITH GAPS at best.',
      ].join('\n'),
    );
  return 0;
}

export const PHASE_USAGE = 'usage: loki phase advance [PHASE] [--reason R] | loki phase back PHASE --reason R';

/** `loki phase advance [PHASE] | back PHASE --reason R`: the same exit criteria as the agent's loki_phase_advance. */
export async function phaseCommand(
  project: Project,
  args: string[],
  o: { reason: string | undefined; json: boolean },
): Promise<number> {
  const [sub, target, ...extra] = args;
  if ((sub !== 'advance' && sub !== 'back') || extra.length > 0) throw new CliError(PHASE_USAGE, 2);
  if (sub === 'back' && (target === undefined || o.reason === undefined))
    throw new CliError(`${PHASE_USAGE}\nback: name the phase and say why (--reason)`, 2);
  const r = await movePhaseAsPerson(project, sub, target ? phaseName(target, 'PHASE') : undefined, o.reason);
  if (o.json) printJson({ ok: r.ok, from: r.from, to: r.to, reasons: r.reasons });
  else if (r.ok) print(`Phase ${r.from} -> ${r.to}${sub === 'back' ? ` (${o.reason})` : ''}.`);
  else
    print(
      [
        `${paint('yellow', 'Not moved')}: the run stays in ${r.from}${r.to ? ` (asked: ${r.to})` : ''}.`,
        ...r.reasons.map((x) => `- ${forPeople(x)}`),
      ].join('\n'),
    );
  return r.ok ? 0 : 1;
}

/** `loki say TEXT...`: a directive for the agent's next turn. */
export async function sayCommand(project: Project, words: string[], json: boolean): Promise<number> {
  // Scrubbed as one text, so a secret said over several unquoted words is seen whole: it would be archived in
  // .loki/logs/ once delivered.
  const d = await sendDirective(project, scrubbed(words.join(' ')));
  if (json) printJson(d);
  else
    print(
      `Written to .loki/HUMAN_INPUT.md${d.appended ? ' after the directive still waiting' : ''}: the agent's next turn (loki_status) hands it over once.`,
    );
  return 0;
}
