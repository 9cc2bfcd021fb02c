/**
 * How `loki run` starts one headless session of each host: the binary (found on PATH), its arguments and the
 * environment it adds. Only what makes a session unattended is added by default (a prompt, permissions or a
 * sandbox so its tools run without a person to approve them); whatever the person passes after `--` goes last,
 * and a permission or sandbox option among it replaces the default rather than being fought over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HOSTS, type Host } from '../install/hosts.js';
import { findPlugin, findRegistrations } from '../install/registrations.js';

export { HOSTS, type Host };

/**
 * The first message of every session: it starts from the briefing, so a resumed session (after a crash, a
 * timeout, or an agent that ended its turn) picks up exactly where the run stands.
 */
export const SESSION_PROMPT =
  'Loki Mode: a run is in progress in this project (driven by `loki run`). Call loki_status first and follow its ' +
  'Next line, step after step, until it says to end the session.';

/**
 * Claude Code's tools for an unattended session: the loki server (as the plugin or `loki install claude` names
 * it), the file and shell tools (the PreToolUse guard still checks each call), subagents for the council.
 * `--dangerously-skip-permissions` is not the default: Claude Code refuses it as root, and it skips the guard's
 * "ask" answers too.
 */
export const CLAUDE_TOOLS =
  'mcp__plugin_loki-mode_loki,mcp__loki,Read,Write,Edit,MultiEdit,NotebookEdit,Glob,Grep,Bash,ToolSearch,TodoWrite,Task';

const CLAUDE_PERMISSION_OPTIONS = [
  '--allowedTools',
  '--allowed-tools',
  '--permission-mode',
  '--dangerously-skip-permissions',
  '--allow-dangerously-skip-permissions',
];
const CODEX_SANDBOX_OPTIONS = [
  '-s',
  '--sandbox',
  '--approve-for-me',
  '--full-auto',
  '--dangerously-bypass-approvals-and-sandbox',
];

export interface HostLaunch {
  host: Host;
  bin: string;
  args: string[];
  /** Added to the environment loki run itself has. */
  env: Record<string, string>;
  /** What was asked that this host cannot do (said once, as a warning). */
  unsupported: string[];
}

/** `name` as an executable file in a PATH folder, or undefined. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Whether the loki server is registered with `host` for this project (the files `loki install` writes). */
export function registeredWith(host: Host, root: string, env: NodeJS.ProcessEnv, home: string): boolean {
  if (host === 'claude' && findPlugin(env, home)) return true;
  return findRegistrations(root, env, home).some((r) => r.host === host && r.entry !== undefined);
}

/** The host to drive when none is named: the first installed and registered for this project, else claude. */
export function defaultHost(root: string, env: NodeJS.ProcessEnv, home: string): Host {
  return HOSTS.find((h) => findOnPath(h, env) !== undefined && registeredWith(h, root, env, home)) ?? 'claude';
}

const has = (args: readonly string[], options: readonly string[]) =>
  args.some((a) => options.includes(a) || options.some((o) => o.startsWith('--') && a.startsWith(`${o}=`)));

/**
 * One session's command line. `budgetUsd` is what is left of the run's budget: passed to the hosts that can stop
 * themselves at a spend (Claude Code); the others are stopped by loki run between sessions.
 */
export function hostLaunch(
  host: Host,
  bin: string,
  opts: { root: string; prompt: string; budgetUsd?: number | undefined; extra: readonly string[] },
): HostLaunch {
  const unsupported: string[] = [];
  switch (host) {
    case 'claude':
      return {
        host,
        bin,
        args: [
          '-p',
          opts.prompt,
          ...(opts.budgetUsd !== undefined ? ['--max-budget-usd', opts.budgetUsd.toFixed(2)] : []),
          ...(has(opts.extra, CLAUDE_PERMISSION_OPTIONS) ? [] : ['--allowedTools', CLAUDE_TOOLS]),
          ...opts.extra,
        ],
        env: {},
        unsupported,
      };
    case 'codex':
      if (opts.budgetUsd !== undefined) unsupported.push('a spend limit (--budget is checked between sessions)');
      return {
        host,
        bin,
        args: [
          'exec',
          // Unattended: codex exec never asks, so without a writable sandbox every edit would be refused.
          ...(has(opts.extra, CODEX_SANDBOX_OPTIONS) ? [] : ['--sandbox', 'workspace-write']),
          '--skip-git-repo-check',
          '-C',
          opts.root,
          ...opts.extra,
          opts.prompt,
        ],
        env: {},
        unsupported,
      };
    case 'cline':
      if (opts.budgetUsd !== undefined) unsupported.push('a spend limit (--budget is checked between sessions)');
      return {
        host,
        bin,
        // Cline auto-approves in this mode; --json keeps its output plain for the log tail.
        args: ['--json', '-c', opts.root, ...opts.extra, opts.prompt],
        // Local sessions: otherwise Cline starts a hub daemon that outlives the session, and loki run leaves
        // nothing running.
        env: { CLINE_SESSION_BACKEND_MODE: 'local' },
        unsupported,
      };
  }
}
