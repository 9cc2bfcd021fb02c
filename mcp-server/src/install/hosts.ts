/**
 * `loki install <host>`, pure: where each host keeps its MCP configuration and how the `loki` entry is merged
 * into what is already there (every other key kept, the same input giving the same file, so a second run changes
 * nothing). I/O lives in cli/install.ts.
 *
 *   claude  project: <root>/.mcp.json            user: ~/.claude.json ($CLAUDE_CONFIG_DIR)  key mcpServers.loki
 *   codex   project: <root>/.codex/config.toml   user: $CODEX_HOME/config.toml  table [mcp_servers.loki]
 *           and the skill in $CODEX_HOME/skills/loki-mode/ (where Codex lists skills to the model)
 *   cline   the Cline settings file (CLI: ~/.cline/data/settings/cline_mcp_settings.json), key mcpServers.loki,
 *           and the skill in ~/.cline/skills/loki-mode/
 *
 * A project file is committed and read on other machines, so its entry is portable: the published package by
 * npx, no absolute path. A user file stays on this machine and may name this installation's own server. No
 * entry pins a project unless asked (cline --project): the server works on the folder the host starts it in.
 */
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { canonicalJson } from '../audit/chain.js';

export const HOSTS = ['claude', 'codex', 'cline'] as const;
export type Host = (typeof HOSTS)[number];
export type Scope = 'project' | 'user';

export interface Launch {
  command: string;
  args: string[];
}

export interface InstallPlan {
  host: Host;
  scope: Scope;
  file: string;
  format: 'json' | 'toml';
}

import { InstallError } from '../errors.js';

export function planInstall(
  host: Host,
  scope: Scope,
  root: string,
  env: NodeJS.ProcessEnv,
  home: string,
  settingsFile?: string,
): InstallPlan {
  switch (host) {
    case 'claude':
      // CLAUDE_CONFIG_DIR moves Claude Code's user file.
      return {
        host,
        scope,
        format: 'json',
        file:
          scope === 'project' ? path.join(root, '.mcp.json') : path.join(env.CLAUDE_CONFIG_DIR || home, '.claude.json'),
      };
    case 'codex':
      return {
        host,
        scope,
        format: 'toml',
        file:
          scope === 'project'
            ? path.join(root, '.codex', 'config.toml')
            : path.join(codexHome(env, home), 'config.toml'),
      };
    case 'cline':
      return {
        host,
        scope,
        format: 'json',
        file: settingsFile ?? path.join(home, '.cline', 'data', 'settings', 'cline_mcp_settings.json'),
      };
  }
}

/** The published package, by the one npx form that names it (`loki-mcp` alone is not a registered package). */
export function npxLaunch(version: string): Launch {
  return { command: 'npx', args: ['-y', '-p', `loki-mode@${version}`, 'loki-mcp'] };
}

/** Codex's own folder (config.toml, skills/): $CODEX_HOME, default ~/.codex. */
export function codexHome(env: NodeJS.ProcessEnv, home: string): string {
  return env.CODEX_HOME || path.join(home, '.codex');
}

/** Where Codex lists a skill to the model: a folder holding SKILL.md under $CODEX_HOME/skills/. */
export function codexSkillDir(env: NodeJS.ProcessEnv, home: string): string {
  return path.join(codexHome(env, home), 'skills', 'loki-mode');
}

/** Where the Cline CLI lists a skill to the model (checked with 3.0.65): a folder holding SKILL.md under ~/.cline/skills/. */
export function clineSkillDir(home: string): string {
  return path.join(home, '.cline', 'skills', 'loki-mode');
}

/**
 * The server entry for a host, in that host's documented shape. `pin` is a project folder to fix in
 * LOKI_PROJECT_DIR (only when the user asks: a pinned entry serves that project whatever the host opens).
 */
export function serverEntry(host: Host, launch: Launch, pin?: string): Record<string, unknown> {
  const env = pin ? { LOKI_PROJECT_DIR: pin } : undefined;
  switch (host) {
    case 'claude':
      // Claude Code passes CLAUDE_PROJECT_DIR to the server itself.
      return { type: 'stdio', command: launch.command, args: launch.args, env: env ?? {} };
    case 'codex':
      return {
        command: launch.command,
        args: launch.args,
        ...(env ? { env } : {}),
        // A first npx download can take longer than Codex's default start-up wait.
        startup_timeout_sec: 60,
        // loki_verify runs the project's tests.
        tool_timeout_sec: 600,
        // `codex exec` runs with approval policy "never", under which a tool the server marks destructive
        // (loki_rollback, loki_task_fail, ...) fails instead of asking; the user approved the server by installing it.
        default_tools_approval_mode: 'approve',
      };
    case 'cline':
      return {
        command: launch.command,
        args: launch.args,
        ...(env ? { env } : {}),
        disabled: false,
        autoApprove: [],
        timeout: 600,
      };
  }
}

export interface Merged {
  text: string;
  /** What happened to the `loki` entry. */
  change: 'added' | 'updated' | 'unchanged';
  previous: unknown;
}

/** Merge the entry into a JSON config (`mcpServers.loki`), keeping every other key. */
export function mergeJson(existing: string | undefined, entry: Record<string, unknown>, file: string): Merged {
  let doc: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(existing);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('it is not a JSON object');
      doc = parsed as Record<string, unknown>;
    } catch (err) {
      throw new InstallError(
        `${file} is not valid JSON (${(err as Error).message}); fix or move it, then run loki install again. Nothing was changed`,
      );
    }
  }
  const servers = doc.mcpServers ?? {};
  if (typeof servers !== 'object' || servers === null || Array.isArray(servers))
    throw new InstallError(
      `${file}: "mcpServers" is not an object; fix it, then run loki install again. Nothing was changed`,
    );
  const previous = (servers as Record<string, unknown>).loki;
  const next = { ...doc, mcpServers: { ...(servers as Record<string, unknown>), loki: entry } };
  const text = `${JSON.stringify(next, null, 2)}\n`;
  return {
    text,
    change:
      previous === undefined ? 'added' : canonicalJson(previous) === canonicalJson(entry) ? 'unchanged' : 'updated',
    previous,
  };
}

/**
 * Merge the entry into a TOML config as `[mcp_servers.loki]`, keeping every other table and the file's own text
 * (comments included): the old `loki` tables are cut out and the new one appended. The result is parsed again.
 */
export function mergeToml(existing: string | undefined, entry: Record<string, unknown>, file: string): Merged {
  const text = existing ?? '';
  let previous: unknown;
  try {
    previous = (parseToml(text) as { mcp_servers?: Record<string, unknown> }).mcp_servers?.loki;
  } catch (err) {
    throw new InstallError(
      `${file} is not valid TOML (${(err as Error).message}); fix or move it, then run loki install again. Nothing was changed`,
    );
  }
  const kept: string[] = [];
  let skipping = false;
  for (const line of text.split('\n')) {
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$/.exec(line);
    if (header) skipping = /^mcp_servers\.(?:loki|"loki")(?:\.|$)/.test(header[1]!.replace(/\s+/g, ''));
    if (!skipping) kept.push(line);
  }
  const body = stringifyToml({ mcp_servers: { loki: entry } }).trim();
  const base = kept.join('\n').replace(/\s+$/, '');
  const out = `${base}${base ? '\n\n' : ''}${body}\n`;
  const check = (parseToml(out) as { mcp_servers?: Record<string, unknown> }).mcp_servers?.loki;
  if (check === undefined || canonicalJson(check) !== canonicalJson(entry))
    throw new InstallError(
      `${file}: the merged [mcp_servers.loki] table did not read back as written; edit the file by hand (entry: ${JSON.stringify(entry)})`,
    );
  const change =
    previous === undefined ? 'added' : canonicalJson(previous) === canonicalJson(entry) ? 'unchanged' : 'updated';
  return { text: change === 'unchanged' ? text : out, change, previous };
}
