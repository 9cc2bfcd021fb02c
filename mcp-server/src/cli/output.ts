/** Output helpers for the human CLI (the CLI, unlike the server, owns its stdout). */

/**
 * Colour only where a person sees it: a terminal, unless NO_COLOR is set (https://no-color.org); FORCE_COLOR
 * (not "0") asks for it where there is no terminal, e.g. a pager. NO_COLOR wins: it is the person's standing choice.
 */
export function useColour(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '') return env.FORCE_COLOR !== '0';
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

const CODES = { red: 31, green: 32, yellow: 33, bold: 1, dim: 2 } as const;
export type Paint = keyof typeof CODES;

/** `text` in a colour when `stream` (stdout unless said) takes colour; as it is otherwise. */
export function paint(style: Paint, text: string, stream: NodeJS.WriteStream = process.stdout): string {
  return useColour(stream) ? `\u001b[${CODES[style]}m${text}\u001b[0m` : text;
}

/**
 * A reader that goes away (`loki rollback list | head`) is not an error: what follows is dropped, the command
 * finishes what it was doing (a rollback is not cut short by its report) and exits with its own code.
 * Anything else that goes wrong with a standard stream is still raised.
 */
let stdoutGone = false;
export function tolerateClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
        if (stream === process.stdout) stdoutGone = true;
        return;
      }
      throw err;
    });
  }
}

/**
 * Say on a terminal what a command that can take seconds is doing (a rollback of thousands of files, a checkpoint of
 * a large tree), so the person is not left at a silent prompt; the line is wiped when it is done. Nothing in a pipe
 * or a log: there the result alone is wanted. The work itself is synchronous, so this is one line, not a ticker.
 */
export function during<T>(what: string, work: () => T): T {
  if (!process.stderr.isTTY) return work();
  process.stderr.write(`${paint('dim', `${what}...`, process.stderr)}`);
  try {
    return work();
  } finally {
    process.stderr.write('\r\u001b[K');
  }
}

export function print(text: string): void {
  if (stdoutGone) return;
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** JSON for scripts: indented, or one object per line (`line`) for a stream of them. */
export function printJson(value: unknown, line = false): void {
  if (stdoutGone) return;
  process.stdout.write(`${line ? JSON.stringify(value) : JSON.stringify(value, null, 2)}\n`);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  // The header in bold, after padding: escape codes take no columns on screen but would count in padEnd.
  return [paint('bold', lines[0]!), ...lines.slice(1)].join('\n');
}

export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/**
 * Messages the services write for the agent name MCP tools; a person at the terminal has CLI commands for the same
 * things. Applied to what the CLI prints from those services (errors, mostly).
 */
const FOR_PEOPLE: [RegExp, string][] = [
  [/loki_checkpoint_create \(or `loki checkpoint`\)/g, '`loki checkpoint create`'],
  [/\bloki_checkpoint_list\b/g, '`loki checkpoint list`'],
  [/\bloki_checkpoint_create\b/g, '`loki checkpoint create`'],
  [/\bloki_rollback\b/g, '`loki rollback`'],
  [/\bloki_task_list\b/g, '`loki tasks`'],
  [/\(loki_checklist_get lists them\)/g, '(`loki checklist` lists them)'],
  // The reasons a phase or completion is held name the agent's calls; a person steers with `loki tasks`.
  [/move them with loki_task_update/g, 'move them with `loki tasks edit ID --phase PHASE`'],
  [
    /unblock a blocked task with loki_task_update action "unblock"/g,
    'unblock a blocked task with `loki tasks unblock ID`',
  ],
  [
    /put a dead-lettered task back with loki_task_update action "retry"/g,
    'put a dead-lettered task back with `loki tasks retry ID`',
  ],
  [/\(the agent starts one with loki_start\)/g, '(start one from your agent: "Loki Mode" in Claude Code)'],
];

export function forPeople(message: string): string {
  return FOR_PEOPLE.reduce((m, [re, to]) => m.replace(re, to), message);
}
