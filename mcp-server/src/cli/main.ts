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
import { print } from './output.js';
import { signalCommand } from './signals.js';
import { statusCommand } from './status.js';
import { tasksCommand } from './tasks.js';
import { installCommand } from './install.js';
import { demoCommand } from './demo.js';
import { councilCommand, proofCommand } from './trust.js';
import { WAIVE_USAGE, waiveCommand } from './waive.js';
import { CliError } from '../errors.js';
import { scrubInput } from '../domain/secrets.js';

export const HELP = `loki ${VERSION}: Loki Mode for people

Usage: loki <command> [options]

Commands:
  status [--json]        the run at a glance: phase, tier, turns, signals, sessions, next step
  pause                  ask the agent to hold (writes .loki/PAUSE)
  resume                 clear PAUSE and STOP
  stop                   ask the agent to end the run (writes .loki/STOP)
  audit verify [--json]  re-hash the audit log; exit 1 and name the first bad entry on any break
  audit export [FILE]    write the audit log as JSON lines (to FILE, else stdout): a copy to keep outside the project
  config [--json]        every setting, its effective value and its source (config.yaml or LOKI_*)
  doctor [--fix] [--json]  check Node, .loki/ and its disk, the database, records, checkpoints, an interrupted
                         rollback and the audit chain; --fix mends what it safely can
  tasks [--status S] [--json]  the task queue (S: pending, in-progress, completed, failed, blocked, dead-letter)
  tasks show ID [--json] one task with its attempts and errors
  tasks retry ID         put a dead-lettered task back in the queue
  council status|verdicts|report [--json]         the completion council (votes stay hidden until the tally)
  council force-review [reason]                   make the agent verify and convene the council next turn
  waive open-work --reason R                      a person excuses every task open now (shown in the receipt)
  waive task ID... --reason R                     a person excuses these tasks
  waive phase --reason R                          a person lets the run complete before the last phase of its tier
  waive list [--json]                             the waivers of the run
  proof list|show [RUN]                           evidence receipts of completed runs
  proof verify [RUN] [--json]                     re-hash a receipt, re-derive its diff; exit 1 on tamper or drift
  memory list [--layer L] [--limit N] [--json]     recorded memories, newest first
  memory search <query> [--layer L] [--scope S] [--limit N] [--json]
                         ranked search; scope project, global (solutions) or both
  memory show <id>... [--json]                     full items with provenance
  memory consolidate [--json]                      merge similar episodes into patterns
  learn list [--category C] [--json]               cross-project solutions in $LOKI_HOME/solutions
  checkpoint [label] [--json]   snapshot the run state and (in git) every non-ignored file
  rollback list [--json]        checkpoints, newest first (* marks what \`latest\` restores)
  rollback latest [--code]      restore the newest checkpoint that is not a pre-rollback one
  rollback to <id> [--code]     restore a checkpoint; --code restores the files too. Prints the
                                pre-rollback checkpoint id: \`loki rollback to <that id>\` undoes it

  demo                          the offline demo: a whole run on a sample spec in a temporary git repository
  install claude|codex|cline [--project|--user] [--settings FILE] [--npx] [--dry-run]
                                register the server with a host, idempotently, showing what changed
                                (claude/codex default to the project; cline writes its settings file)

Options:
  --project-dir DIR      the project (default: $LOKI_PROJECT_DIR, $CLAUDE_PROJECT_DIR, then .)
  -h, --help             show this help
  -v, --version          print the version

Exit codes: 0 ok, 1 a check failed, 2 usage error.
`;

export async function runCli(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
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
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\nRun \`loki --help\` for usage.`, 2);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    print(VERSION);
    return 0;
  }
  const [command, ...given] = positionals;
  const { rest, reason } = scrubbedArguments(command, given, values.reason);
  if (values.help || command === undefined || command === 'help') {
    print(HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
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
      case 'status':
        expectArgs(0, 'status [--json]');
        return await statusCommand(project, values.json ?? false);
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
        return await tasksCommand(project, rest, { json: values.json ?? false, status: values.status });
      case 'memory':
        return await memoryCommand(project, rest, values);
      case 'council':
        return await councilCommand(project, rest, values.json ?? false);
      case 'proof':
        return proofCommand(project, rest, values.json ?? false);
      case 'waive':
        if (rest.length === 0) throw new CliError(WAIVE_USAGE, 2);
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
      case 'checkpoint':
        return await checkpointCommand(project, rest, values.json ?? false);
      case 'rollback':
        return await rollbackCommand(project, rest, { json: values.json ?? false, code: values.code ?? false });
      default:
        throw new CliError(`unknown command "${command}"; run \`loki --help\` for the list`, 2);
    }
  } catch (err) {
    // A full or read-only disk, or a missing permission, is said as what it is, with the fix: never a stack.
    throw asDiskError(err, path.join(project.root, '.loki')) ?? err;
  } finally {
    project.close();
  }
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
  if (command === 'checkpoint') [head, free] = [[], given];
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
