/**
 * `loki install claude|codex|cline [--project|--user] [--settings FILE] [--npx] [--dry-run]`: register the
 * server with a host, idempotently, and say exactly what changed. The entry starts this installation's own
 * server (`node <dist>/loki-mcp.js`), or `npx -y -p loki-mode@<version> loki-mcp` when this copy runs from the npx
 * cache (which does not last) or with --npx.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HOSTS,
  mergeJson,
  mergeToml,
  planInstall,
  serverEntry,
  type Host,
  type Launch,
  type Scope,
} from '../install/hosts.js';
import type { Project } from '../project.js';
import { readFileIfExists, writeFileAtomic } from '../store/fsx.js';
import { SafeDir } from '../store/paths.js';
import { VERSION } from '../version.js';
import { print, printJson } from './output.js';
import { CliError, InstallError } from '../errors.js';

const USAGE =
  'usage: loki install claude|codex|cline [--project|--user] [--settings FILE (cline)] [--npx] [--dry-run] [--json]';

export interface InstallOptions {
  project?: boolean | undefined;
  user?: boolean | undefined;
  settings?: string | undefined;
  npx?: boolean | undefined;
  dryRun?: boolean | undefined;
  json: boolean;
}

export function installCommand(project: Project, args: string[], opts: InstallOptions): number {
  const [host, ...extra] = args;
  if (!host || extra.length > 0 || !(HOSTS as readonly string[]).includes(host)) throw new CliError(USAGE, 2);
  if (opts.project && opts.user) throw new CliError('give --project or --user, not both', 2);
  if (opts.settings && host !== 'cline')
    throw new CliError('--settings is for cline only (its settings file location)', 2);
  // Claude Code and Codex default to the project (committed with it); Cline has one settings file per user.
  const scope: Scope = opts.user || host === 'cline' ? 'user' : 'project';
  const home = project.env.HOME || os.homedir();
  const plan = planInstall(
    host as Host,
    scope,
    project.root,
    project.env,
    home,
    opts.settings && path.resolve(opts.settings),
  );
  const entry = serverEntry(host as Host, scope, launchCommand(opts.npx ?? false), project.root);
  let merged;
  try {
    const existing = readExisting(plan.file);
    merged = plan.format === 'json' ? mergeJson(existing, entry, plan.file) : mergeToml(existing, entry, plan.file);
  } catch (err) {
    if (err instanceof InstallError) throw new CliError(err.message, 1);
    throw err;
  }
  if (merged.change !== 'unchanged' && !opts.dryRun) writeConfig(plan.file, merged.text);
  const result = {
    host,
    scope: plan.scope,
    file: plan.file,
    change: merged.change,
    dryRun: opts.dryRun ?? false,
    entry,
    previous: merged.previous ?? null,
  };
  if (opts.json) printJson(result);
  else {
    const verb = { added: 'Added', updated: 'Updated', unchanged: 'Already up to date:' }[merged.change];
    print(
      [
        `${opts.dryRun ? '(dry run) ' : ''}${verb} the "loki" MCP server in ${plan.file} (${host}, ${plan.scope} scope).`,
        merged.change === 'updated' ? `Was: ${JSON.stringify(merged.previous)}` : '',
        merged.change !== 'unchanged' ? `Now: ${JSON.stringify(entry)}` : '',
        nextStep(host as Host, plan.scope),
      ]
        .filter(Boolean)
        .join('\n'),
    );
  }
  return 0;
}

function nextStep(host: Host, scope: Scope): string {
  switch (host) {
    case 'claude':
      return scope === 'project'
        ? 'Next: start `claude` in this project and approve the project server (or check with `claude mcp get loki`). For the hooks and the skill, install the plugin: /plugin marketplace add <this repository>, then /plugin install loki-mode.'
        : 'Next: `claude mcp get loki` shows it in every project.';
    case 'codex':
      return 'Next: `codex mcp list` shows it; in a session, say "Loki Mode" or use the loki_start prompt.';
    case 'cline':
      return 'Next: reload Cline (MCP Servers > Configure); it starts the server for this project (LOKI_PROJECT_DIR).';
  }
}

/** This installation's own server, unless it runs from the npx cache (or --npx): then the published package. */
export function launchCommand(npx: boolean): Launch {
  const server = fileURLToPath(new URL('./loki-mcp.js', import.meta.url));
  const ephemeral = server.split(path.sep).includes('_npx');
  if (npx || ephemeral || !fs.existsSync(server))
    return { command: 'npx', args: ['-y', '-p', `loki-mode@${VERSION}`, 'loki-mcp'] };
  return { command: process.execPath, args: [server] };
}

function readExisting(file: string): string | undefined {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) return undefined;
  return readFileIfExists(SafeDir.open(dir), path.basename(file), 16 * 1024 * 1024)?.toString('utf8');
}

/** Atomic, never through a link; creates the folder (e.g. ~/.codex) when missing. */
function writeConfig(file: string, text: string): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(SafeDir.open(dir), path.basename(file), text, { mode: 0o600 });
}
