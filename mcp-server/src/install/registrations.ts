/**
 * Where the loki server is registered on this machine for this project, read from the same files `loki install`
 * writes (and the Claude Code plugin's install record), for `loki doctor`. Reading only: a file that cannot be
 * parsed is reported as such, never repaired.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { clineSkillDir, codexHome, codexSkillDir, planInstall, type Host } from './hosts.js';

export interface Registration {
  /** e.g. "claude (project .mcp.json)" */
  where: string;
  host: Host | 'claude plugin';
  file: string;
  /** The entry as found; undefined when the file could not be read. */
  entry?: { command?: unknown; args?: unknown; env?: unknown };
  problem?: string;
}

export interface PluginInstall {
  installPath: string;
  version: string;
  /** The folder the plugin's launcher installs the package into (CLAUDE_PLUGIN_DATA). */
  dataDir: string;
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function lokiOf(servers: unknown): Registration['entry'] | undefined {
  if (!servers || typeof servers !== 'object') return undefined;
  const entry = (servers as Record<string, unknown>).loki;
  return entry && typeof entry === 'object' ? (entry as Registration['entry']) : undefined;
}

/** Every registration of the `loki` server that applies to `root`, in the hosts' own files. */
export function findRegistrations(root: string, env: NodeJS.ProcessEnv, home: string): Registration[] {
  const found: Registration[] = [];
  const look = (where: string, host: Host, file: string, pick: (doc: unknown) => Registration['entry'] | undefined) => {
    if (!fs.existsSync(file)) return;
    try {
      const text = fs.readFileSync(file, 'utf8');
      const doc = file.endsWith('.toml') ? parseToml(text) : (JSON.parse(text) as unknown);
      const entry = pick(doc);
      if (entry) found.push({ where, host, file, entry });
    } catch (err) {
      found.push({ where, host, file, problem: `cannot be read: ${(err as Error).message}` });
    }
  };
  const mcp = (doc: unknown) => lokiOf((doc as { mcpServers?: unknown })?.mcpServers);
  const toml = (doc: unknown) => lokiOf((doc as { mcp_servers?: unknown })?.mcp_servers);
  look('claude (project .mcp.json)', 'claude', planInstall('claude', 'project', root, env, home).file, mcp);
  const claudeUser = planInstall('claude', 'user', root, env, home).file;
  look('claude (user)', 'claude', claudeUser, mcp);
  // `claude mcp add` without a scope writes the project's entry into the user file ("local" scope).
  look('claude (local)', 'claude', claudeUser, (doc) =>
    lokiOf((doc as { projects?: Record<string, { mcpServers?: unknown }> })?.projects?.[root]?.mcpServers),
  );
  look('codex (project .codex/config.toml)', 'codex', planInstall('codex', 'project', root, env, home).file, toml);
  look('codex (user)', 'codex', path.join(codexHome(env, home), 'config.toml'), toml);
  look('cline', 'cline', planInstall('cline', 'user', root, env, home).file, mcp);
  return found;
}

/** The Claude Code plugin's install record (installed_plugins.json), if the plugin is installed. */
export function findPlugin(env: NodeJS.ProcessEnv, home: string): PluginInstall | undefined {
  const config = env.CLAUDE_CONFIG_DIR || path.join(home, '.claude');
  const record = path.join(config, 'plugins', 'installed_plugins.json');
  if (!fs.existsSync(record)) return undefined;
  try {
    const doc = readJson(record) as { plugins?: Record<string, { installPath?: string; version?: string }[]> };
    for (const [id, installs] of Object.entries(doc.plugins ?? {})) {
      if (!id.startsWith('loki-mode@')) continue;
      const install = installs.find((i) => typeof i.installPath === 'string');
      if (!install) continue;
      // Claude Code names a plugin's data folder after its id, with the "@" as "-".
      return {
        installPath: install.installPath!,
        version: install.version ?? 'unknown',
        dataDir: path.join(config, 'plugins', 'data', id.replace(/[^A-Za-z0-9_.-]/g, '-')),
      };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Codex lists the skill to the model only if its SKILL.md is where Codex reads skills. */
export function codexSkillInstalled(env: NodeJS.ProcessEnv, home: string): string | undefined {
  const file = path.join(codexSkillDir(env, home), 'SKILL.md');
  return fs.existsSync(file) ? file : undefined;
}

/** The Cline CLI lists the skill to the model only from ~/.cline/skills/. */
export function clineSkillInstalled(home: string): string | undefined {
  const file = path.join(clineSkillDir(home), 'SKILL.md');
  return fs.existsSync(file) ? file : undefined;
}
