/**
 * `loki waive open-work|task ID...|phase --reason "..."` and `loki waive list`: a person excuses work the run did
 * not do, so that completion may accept it. Only here, at the command line: no MCP tool waives work. Each waiver
 * is recorded with its reason as a person's action (audit `run.waive`), shown in the receipt, and makes the
 * headline VERIFIED WITH GAPS at best.
 */
import { describeWaiver, type WaiverKind } from '../domain/waivers.js';
import type { Project } from '../project.js';
import { readRun } from '../run/state.js';
import { addWaiver, readWaivers } from '../trust/waivers.js';
import { print, printJson } from './output.js';
import { CliError } from '../errors.js';

export const WAIVE_USAGE =
  'usage: loki waive open-work --reason "..." | loki waive task ID... --reason "..." | loki waive phase --reason "..." | loki waive item ID... --reason "..." | loki waive list [--json]';

export function waiveCommand(
  project: Project,
  args: string[],
  opts: { reason: string | undefined; json: boolean },
): number {
  const [sub, ...rest] = args;
  if (sub === 'list') {
    if (rest.length > 0 || opts.reason !== undefined) throw new CliError(WAIVE_USAGE, 2);
    const store = project.existingStore();
    const run = readRun(store);
    if (!run)
      throw new CliError('no run yet in this project (start one from your agent: "Loki Mode" in Claude Code)', 1);
    const waivers = readWaivers(store, run.runId);
    if (opts.json) printJson({ runId: run.runId, waivers });
    else print(waivers.length ? waivers.map(describeWaiver).join('\n') : `Run ${run.runId} has no waivers.`);
    return 0;
  }
  if (sub !== 'open-work' && sub !== 'task' && sub !== 'phase') throw new CliError(WAIVE_USAGE, 2);
  if (opts.reason === undefined)
    throw new CliError(`${WAIVE_USAGE}\n--reason is required: say why the work need not be done`, 2);
  const kind: WaiverKind = sub;
  const waiver = addWaiver(project, kind, rest, opts.reason);
  if (opts.json) printJson(waiver);
  else
    print(
      [
        `Recorded ${describeWaiver(waiver)}`,
        'It is shown in the receipt as your waiver, and the headline can be VERIFIED WITH GAPS at best.',
      ].join('\n'),
    );
  return 0;
}
