/** `loki`: the command for people. Parses arguments, resolves the project, dispatches. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ProjectRootError } from '../errors.js';
import { Project, resolveProjectRoot } from '../project.js';
import { routeWarnings } from '../log.js';
import { asDiskError } from '../store/disk.js';
import { VERSION } from '../version.js';
import { auditExportCommand, auditVerifyCommand } from './audit.js';
import { checkpointCommand, rollbackCommand } from './checkpoints.js';
import { configCommand } from './config.js';
import { doctorCommand } from './doctor.js';
import { learnCommand, memoryCommand } from './memory.js';
import { COMMANDS, COMMANDS_BY_NAME, GLOBAL_OPTIONS, closest, didYouMean, type Command } from './commands.js';
import { print } from './output.js';
import { signalCommand } from './signals.js';
import { statusCommand } from './status.js';
import { tasksCommand } from './tasks.js';
import { installCommand } from './install.js';
import { demoCommand } from './demo.js';
import { councilCommand, proofCommand } from './trust.js';
import { WAIVE_USAGE, waiveCommand } from './waive.js';
import {
  STEER_SUBCOMMANDS,
  checklistCommand,
  phaseCommand,
  sayCommand,
  steerTasksCommand,
  waiveItemCommand,
} from './steer.js';
import { watchCommand } from './watch.js';
import { runCommand } from './run.js';
import { DASHBOARD_USAGE, dashboardCommand, type StartDashboard } from './dashboard.js';
import { CliError } from '../errors.js';
import { scrubInput } from '../domain/secrets.js';

const OPTIONS_HELP = `Options:
  --project-dir DIR      the project (default: $LOKI_PROJECT_DIR, $CLAUDE_PROJECT_DIR, then .)
  -h, --help             show this help (after a command: that command's help)
  -v, --version          print the version

Exit codes: 0 ok, 1 a check failed, 2 usage error.
`;

const SETUP = new Set(['demo', 'install', 'version', 'help']);

export const HELP = `loki ${VERSION}: Loki Mode for people

Usage: loki <command> [options]   (loki <command> --help: that command alone)

Commands:
${COMMANDS.filter((c) => !SETUP.has(c.name))
  .map((c) => c.help)
  .join('\n')}

${COMMANDS.filter((c) => SETUP.has(c.name))
  .map((c) => c.help)
  .join('\n')}

${OPTIONS_HELP}`;

/** One command's help: its lines of the global help, the options it takes and the global ones. */
export function commandHelp(command: Command): string {
  return `Usage:
${command.help}

${OPTIONS_HELP}`;
}

const OPTIONS = {
  'project-dir': { type: 'string' },
  json: { type: 'boolean' },
  fix: { type: 'boolean' },
  status: { type: 'string' },
  layer: { type: 'string' },
  scope: { type: 'string' },
  limit: { type: 'string' },
  category: { type: 'string' },
  code: { type: 'boolean' },
  project: { type: 'boolean' },
  user: { type: 'boolean' },
  settings: { type: 'string' },
  npx: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  reason: { type: 'string' },
  watch: { type: 'boolean' },
  title: { type: 'string' },
  description: { type: 'string' },
  priority: { type: 'string' },
  phase: { type: 'string' },
  depends: { type: 'string' },
  acceptance: { type: 'string', multiple: true },
  host: { type: 'string' },
  port: { type: 'string' },
  'max-sessions': { type: 'string' },
  minutes: { type: 'string' },
  budget: { type: 'string' },
  'session-minutes': { type: 'string' },
  restart: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** What the composition root hands in: the surfaces the CLI serves but may not import (eslint.config.mjs). */
export interface CliSurfaces {
  startDashboard?: StartDashboard;
}

export async function runCli(argv: string[], surfaces: CliSurfaces = {}): Promise<number> {
  // `loki run ... -- ARGS`: what follows `--` is the host's, taken before loki reads its own options.
  const { own, hostArgs } = splitHostArgs(argv);
  argv = own;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw parseError(err as Error & { code?: string }, argv);
  }
  const { values, positionals } = parsed;
  const [command, ...given] = positionals;
  if (values.version || command === 'version') {
    if (command === 'version' && given.length > 0) throw new CliError('usage: loki version', 2);
    print(VERSION);
    return 0;
  }
  if (command === undefined) {
    print(HELP);
    return values.help ? 0 : 2;
  }
  if (command === 'help') {
    if (given.length > 1) throw new CliError('usage: loki help [COMMAND]', 2);
    print(given[0] === undefined ? HELP : commandHelp(knownCommand(given[0])));
    return 0;
  }
  const spec = knownCommand(command);
  if (values.help) {
    print(commandHelp(spec));
    return 0;
  }
  // An option another command takes would otherwise be ignored in silence (`loki status --fix` fixes nothing).
  const stray = Object.keys(values).find(
    (k) => !(GLOBAL_OPTIONS as readonly string[]).includes(k) && !spec.options.includes(k),
  );
  if (stray !== undefined)
    throw new CliError(
      `loki ${command} takes no --${stray} option${didYouMean(stray, spec.options, (o) => `--${o}`)}; ` +
        `run \`loki ${command} --help\` for its usage`,
      2,
    );
  const { rest, reason } = scrubbedArguments(command, given, values.reason);
  const expectArgs = (n: number, usage: string) => {
    if (rest.length !== n) throw new CliError(`usage: loki ${usage}`, 2);
  };
  routeWarnings();
  let resolved;
  try {
    resolved = resolveProjectRoot(values['project-dir'], process.env, process.cwd());
  } catch (err) {
    if (err instanceof ProjectRootError) throw new CliError(err.message, 2);
    throw err;
  }
  const project = new Project({ root: resolved.root, actor: `cli:${process.pid}` });
  try {
    switch (command) {
      case 'run':
      case 'start':
        return await runCommand(project, rest, hostArgs ?? [], {
          host: values.host,
          maxSessions: values['max-sessions'],
          minutes: values.minutes,
          budget: values.budget,
          sessionMinutes: values['session-minutes'],
          restart: values.restart ?? false,
          json: values.json ?? false,
        });
      case 'status':
        expectArgs(0, 'status [--json] | loki status --watch');
        return values.watch
          ? await watchCommand(project, values.json ?? false)
          : await statusCommand(project, values.json ?? false);
      case 'pause':
      case 'resume':
      case 'stop':
        expectArgs(0, command);
        return await signalCommand(project, command);
      case 'audit':
        if (rest[0] === 'verify' && rest.length === 1) return auditVerifyCommand(project, values.json ?? false);
        if (rest[0] === 'export' && rest.length <= 2) return auditExportCommand(project, rest[1]);
        throw new CliError('usage: loki audit verify [--json] | loki audit export [FILE]', 2);
      case 'config':
        expectArgs(0, 'config [--json]');
        return configCommand(project, values.json ?? false);
      case 'doctor':
        expectArgs(0, 'doctor [--fix] [--json]');
        return doctorCommand(project, resolved.source, values.fix ?? false, values.json ?? false);
      case 'tasks':
        if ((STEER_SUBCOMMANDS as readonly string[]).includes(rest[0] ?? ''))
          return await steerTasksCommand(project, rest, { ...values, reason, json: values.json ?? false });
        return await tasksCommand(project, rest, { json: values.json ?? false, status: values.status });
      case 'checklist':
        expectArgs(0, 'checklist [--json]');
        return checklistCommand(project, values.json ?? false);
      case 'phase':
        return await phaseCommand(project, rest, { reason, json: values.json ?? false });
      case 'say':
        if (rest.length === 0) throw new CliError('usage: loki say TEXT...', 2);
        return await sayCommand(project, rest, values.json ?? false);
      case 'memory':
        return await memoryCommand(project, rest, values);
      case 'council':
        return await councilCommand(project, rest, values.json ?? false);
      case 'proof':
        return proofCommand(project, rest, values.json ?? false);
      case 'waive':
        if (rest.length === 0) throw new CliError(WAIVE_USAGE, 2);
        if (rest[0] === 'item') {
          if (reason === undefined)
            throw new CliError(`${WAIVE_USAGE}\n--reason is required: say why the item need not be met`, 2);
          if (rest.length < 2) throw new CliError(WAIVE_USAGE, 2);
          return waiveItemCommand(project, rest.slice(1), reason, values.json ?? false);
        }
        return waiveCommand(project, rest, { reason, json: values.json ?? false });
      case 'learn':
        return learnCommand(project, rest, values);
      case 'demo':
        expectArgs(0, 'demo');
        return demoCommand();
      case 'install':
        return installCommand(project, rest, {
          project: values.project,
          user: values.user,
          settings: values.settings,
          npx: values.npx,
          dryRun: values['dry-run'],
          json: values.json ?? false,
        });
      case 'dashboard':
        expectArgs(0, DASHBOARD_USAGE.slice('usage: loki '.length));
        return await dashboardCommand(project, { port: values.port, host: values.host }, surfaces.startDashboard);
      case 'checkpoint':
        return checkpointCommand(project, rest, values.json ?? false);
      case 'rollback':
        return await rollbackCommand(project, rest, { json: values.json ?? false, code: values.code ?? false });
      default:
        throw new Error(`internal: command "${command}" is in the table but not dispatched`);
    }
  } catch (err) {
    if (err instanceof CliError && err.exitCode === 2) throw withSubcommandHint(err, spec, rest[0]);
    // A full or read-only disk, or a missing permission, is said as what it is, with the fix: never a stack.
    throw asDiskError(err, path.join(project.root, '.loki')) ?? err;
  } finally {
    project.close();
  }
}

/** For `loki run`/`loki start` only: the arguments after the first `--` go to the host (other commands keep it). */
function splitHostArgs(argv: string[]): { own: string[]; hostArgs: string[] | undefined } {
  const at = argv.indexOf('--');
  const command = commandIn(argv);
  if (at < 0 || (command?.name !== 'run' && command?.name !== 'start')) return { own: argv, hostArgs: undefined };
  return { own: argv.slice(0, at), hostArgs: argv.slice(at + 1) };
}

function knownCommand(name: string): Command {
  const c = COMMANDS_BY_NAME.get(name);
  if (c) return c;
  const names = COMMANDS.map((x) => x.name);
  throw new CliError(`unknown command "${name}"${didYouMean(name, names)}; run \`loki --help\` for the list`, 2);
}

/** A usage error after a mistyped subcommand (`loki tasks shwo t1`) also names the subcommand meant. */
function withSubcommandHint(err: CliError, command: Command, typed: string | undefined): CliError {
  const subs = command.subcommands ?? [];
  if (typed === undefined || subs.includes(typed)) return err;
  const meant = closest(typed, subs);
  return meant ? new CliError(`${err.message}\n(did you mean \`loki ${command.name} ${meant}\`?)`, 2) : err;
}

/** parseArgs' refusal, said for a person: an unknown option gets the closest one its command takes. */
function parseError(err: Error & { code?: string }, argv: string[]): CliError {
  const command = commandIn(argv);
  const helpRun = command ? `loki ${command.name} --help` : 'loki --help';
  const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /Unknown option '([^']+)'/.exec(err.message) : null;
  if (!unknown) return new CliError(`${err.message}\nRun \`${helpRun}\` for usage.`, 2);
  const typed = unknown[1]!;
  const candidates = [...(command?.options ?? Object.keys(OPTIONS)), ...GLOBAL_OPTIONS];
  return new CliError(
    `unknown option ${typed}${didYouMean(typed.replace(/^-+/, ''), candidates, (o) => `--${o}`)}; run \`${helpRun}\` for usage`,
    2,
  );
}

/** The command named in raw arguments (the first word that is not an option or an option's value), if known. */
function commandIn(argv: string[]): Command | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (a.startsWith('-')) {
      const name = a.replace(/^-+/, '');
      if (!a.includes('=') && OPTIONS[name as keyof typeof OPTIONS]?.type === 'string') i++;
      continue;
    }
    return COMMANDS_BY_NAME.get(a);
  }
  return undefined;
}

/**
 * The arguments with secrets scrubbed from the free text a person types, before any command sees it: `--reason`
 * (waivers), a checkpoint's label, a forced review's reason. What is stored from them, in records, the audit chain
 * and git commit messages, is then free of secrets; the other arguments name things (ids, files) and stay as typed.
 * Says on stderr how many values were redacted.
 */
function scrubbedArguments(
  command: string | undefined,
  given: string[],
  reason: string | undefined,
): { rest: string[]; reason: string | undefined } {
  let head = given;
  let free: string[] = [];
  // A checkpoint's label: after `create`, or the one word of the shorthand `loki checkpoint LABEL`.
  if (command === 'checkpoint' && given[0] === 'create') [head, free] = [given.slice(0, 1), given.slice(1)];
  else if (command === 'checkpoint' && given[0] !== 'list' && given[0] !== 'show') [head, free] = [[], given];
  // A forced review's reason is every word after it (cli/trust.ts joins them): scrubbed as one text, so a secret
  // said over several unquoted words ("the db password is ...") is seen whole.
  else if (command === 'council' && given[0] === 'force-review' && given.length > 1)
    [head, free] = [given.slice(0, 1), [given.slice(1).join(' ')]];
  const { value, report } = scrubInput({ free, reason }, new Set());
  if (report.redacted > 0)
    process.stderr.write(
      `loki: ${report.redacted} value(s) looked like secrets (${report.kinds.join(', ')}) and are stored as [REDACTED:<kind>]\n`,
    );
  return { rest: [...head, ...value.free], reason: value.reason };
}
