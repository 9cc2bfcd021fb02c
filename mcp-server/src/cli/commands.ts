/**
 * The commands of `loki`, as data: what each one's help says and which options it takes. The global help, each
 * command's own help (`loki <command> --help`, `loki help <command>`), the check that an option belongs to its
 * command and the "did you mean" suggestions are all read from this one table.
 */
import { editDistance } from '../config/load.js';

export interface Command {
  name: string;
  /** The lines of the help that describe it (usage, then what it does), indented as in the global help. */
  help: string;
  /** The options it takes, without the leading dashes (the global ones are always allowed). */
  options: readonly string[];
  /** Its subcommands, for suggestions. */
  subcommands?: readonly string[];
}

export const GLOBAL_OPTIONS = ['project-dir', 'help', 'version'] as const;

export const COMMANDS: readonly Command[] = [
  {
    name: 'run',
    options: ['host', 'max-sessions', 'minutes', 'budget', 'session-minutes', 'restart', 'json'],
    help: `  run [SPEC] [--host H] [--max-sessions N] [--minutes N] [--budget USD] [--session-minutes N]
      [--restart] [--json] [-- ARGS]
                         start or resume the run (as loki_start would, as you; --restart archives the active
                         one and starts SPEC), then drive the agent headless, session after session, until
                         COMPLETE, STOP, PAUSE or a limit; progress as it happens (--json: one event per line).
                         H: claude, codex, cline (default: the first installed and registered here). ARGS go to
                         the host. Exit 0 COMPLETE, 3 STOP (or the run stopped), 4 PAUSE, 5 a limit, 6 host not
                         installed, 7 host failing, 130 interrupted`,
  },
  {
    name: 'start',
    options: ['host', 'max-sessions', 'minutes', 'budget', 'session-minutes', 'restart', 'json'],
    help: '  start [SPEC] ...       the same as `loki run`',
  },
  {
    name: 'dashboard',
    options: ['port', 'host'],
    help: `  dashboard [--port N] [--host ADDRESS]
                         watch and steer the run in a browser: pages, a JSON API, live updates and /metrics
                         (default 127.0.0.1:57374; prints the address with its token; docs/dashboard.md)`,
  },
  {
    name: 'status',
    options: ['json', 'watch'],
    help: `  status [--json]        the run at a glance: phase, tier, turns, signals, sessions, next step
  status --watch [--json]  the same, live: redrawn as the run changes (a line per change in a pipe; --json: one
                         JSON object per line); ends on Ctrl-C or when the run completes or stops`,
  },
  { name: 'pause', options: [], help: '  pause                  ask the agent to hold (writes .loki/PAUSE)' },
  { name: 'resume', options: [], help: '  resume                 clear PAUSE and STOP' },
  { name: 'stop', options: [], help: '  stop                   ask the agent to end the run (writes .loki/STOP)' },
  {
    name: 'audit',
    options: ['json'],
    subcommands: ['verify', 'export'],
    help: `  audit verify [--json]  re-hash the audit log; exit 1 and name the first bad entry on any break
  audit export [FILE]    write the audit log as JSON lines (to FILE, else stdout): a copy to keep outside the project`,
  },
  {
    name: 'config',
    options: ['json'],
    help: `  config [--json]        every setting, its effective value and its source (config.yaml or LOKI_*); exit 1
                         on a problem, or on a LOKI_* variable loki does not know (a typo is named with its fix)`,
  },
  {
    name: 'doctor',
    options: ['fix', 'json'],
    help: `  doctor [--fix] [--json]  check Node, .loki/ and its disk, the database, records, checkpoints, an interrupted
                         rollback and the audit chain; --fix mends what it safely can`,
  },
  {
    name: 'tasks',
    options: ['status', 'json', 'title', 'description', 'priority', 'phase', 'depends', 'acceptance', 'reason'],
    subcommands: ['show', 'retry', 'add', 'edit', 'block', 'release', 'unblock'],
    help: `  tasks [--status S] [--json]  the task queue (S: pending, in-progress, completed, failed, blocked, dead-letter)
  tasks show ID [--json] one task with its attempts and errors
  tasks retry ID         put a dead-lettered task back in the queue
  tasks add TITLE [--description D] [--priority P] [--phase PHASE] [--depends ID,ID] [--acceptance A]...
                         add a task to the run (yours: recorded as a person's action)
  tasks edit ID [--title T] [--description D] [--priority P] [--phase PHASE] [--depends ID,ID] [--acceptance A]...
  tasks block ID --reason R      hold a task back (an agent's claim on it ends)
  tasks release ID [--reason R]  end the claim on a task in progress (yours overrides the agent's); it is pending
  tasks unblock ID               a blocked task is pending again`,
  },
  {
    name: 'council',
    options: ['json'],
    subcommands: ['status', 'verdicts', 'report', 'force-review'],
    help: `  council status|verdicts|report [--json]         the completion council (votes stay hidden until the tally)
  council force-review [reason]                   make the agent verify and convene the council next turn`,
  },
  {
    name: 'waive',
    options: ['reason', 'json'],
    subcommands: ['open-work', 'task', 'phase', 'item', 'list'],
    help: `  waive open-work --reason R                      a person excuses every task open now (shown in the receipt)
  waive task ID... --reason R                     a person excuses these tasks
  waive item ID... --reason R                     a person waives checklist items (\`loki checklist\` lists them)
  waive phase --reason R                          a person lets the run complete before the last phase of its tier
  waive list [--json]                             the waivers of the run`,
  },
  {
    name: 'checklist',
    options: ['json'],
    help: "  checklist [--json]                              the run's completion checklist: each item, its check and status",
  },
  {
    name: 'phase',
    options: ['reason', 'json'],
    subcommands: ['advance', 'back'],
    help: `  phase advance [PHASE] [--reason R]              move to the next phase, if its exit criteria hold (as for the agent)
  phase back PHASE --reason R                     send the run back to an earlier phase, saying why`,
  },
  {
    name: 'say',
    options: ['json'],
    help: `  say TEXT...                                     a directive for the agent's next turn (.loki/HUMAN_INPUT.md);
                                                  needs LOKI_PROMPT_INJECTION=true, refused otherwise`,
  },
  {
    name: 'proof',
    options: ['json'],
    subcommands: ['list', 'show', 'verify'],
    help: `  proof list|show [RUN]                           evidence receipts of completed runs
  proof verify [RUN] [--json]                     re-hash a receipt, re-derive its diff; exit 1 on tamper or drift`,
  },
  {
    name: 'memory',
    options: ['layer', 'scope', 'limit', 'json'],
    subcommands: ['list', 'search', 'show', 'consolidate'],
    help: `  memory list [--layer L] [--limit N] [--json]     recorded memories, newest first
  memory search <query> [--layer L] [--scope S] [--limit N] [--json]
                         ranked search; scope project, global (solutions) or both
  memory show <id>... [--json]                     full items with provenance
  memory consolidate [--json]                      merge similar episodes into patterns`,
  },
  {
    name: 'learn',
    options: ['category', 'json'],
    subcommands: ['list'],
    help: '  learn list [--category C] [--json]               cross-project solutions in $LOKI_HOME/solutions',
  },
  {
    name: 'checkpoint',
    options: ['json'],
    subcommands: ['create', 'list', 'show'],
    help: `  checkpoint create [label] [--json]  snapshot the run state and (in git) every non-ignored file
  checkpoint list [--json]      checkpoints, newest first (* marks what \`rollback latest\` restores)
  checkpoint show <id> [--json] one checkpoint: when, why, its phase, its code commit and state`,
  },
  {
    name: 'rollback',
    options: ['json', 'code'],
    subcommands: ['list', 'latest', 'to'],
    help: `  rollback list [--json]        the same as \`checkpoint list\`
  rollback latest [--code]      restore the newest checkpoint that is not a pre-rollback one
  rollback to <id> [--code]     restore a checkpoint; --code restores the files too. Prints the
                                pre-rollback checkpoint id: \`loki rollback to <that id>\` undoes it`,
  },
  {
    name: 'demo',
    options: [],
    help: '  demo                          the offline demo: a whole run on a sample spec in a temporary git repository',
  },
  {
    name: 'install',
    options: ['project', 'user', 'settings', 'npx', 'dry-run', 'json'],
    subcommands: ['claude', 'codex', 'cline'],
    help: `  install claude|codex|cline [--project|--user] [--settings FILE] [--npx] [--dry-run]
                                register the server with a host, idempotently, showing what changed
                                (claude/codex default to the project; cline writes its settings file)`,
  },
  { name: 'version', options: [], help: '  version                       print the version' },
  { name: 'help', options: [], help: "  help [COMMAND]                this help, or one command's" },
];

export const COMMANDS_BY_NAME: ReadonlyMap<string, Command> = new Map(COMMANDS.map((c) => [c.name, c]));

/** The closest of `candidates` to what was typed, when it is near enough to be a typo of it. */
export function closest(typed: string, candidates: readonly string[]): string | null {
  let best: { word: string; d: number } | null = null;
  for (const word of candidates) {
    const d = editDistance(typed.toLowerCase(), word.toLowerCase());
    if (!best || d < best.d) best = { word, d };
  }
  // One edit in short words, up to a third of longer ones: "stauts" is status, "do" is not doctor.
  return best && best.d <= Math.max(1, Math.floor(typed.length / 3)) ? best.word : null;
}

/** ` (did you mean "x"?)`, or nothing. */
export function didYouMean(typed: string, candidates: readonly string[], quote = (w: string) => `"${w}"`): string {
  const word = closest(typed, candidates);
  return word ? ` (did you mean ${quote(word)}?)` : '';
}
