/**
 * `loki install claude|codex|cline [--project|--user] [--settings FILE] [--npx] [--dry-run]`: register the
 * server with a host, idempotently, and say exactly what changed. A project file (committed, read on other
 * machines) gets the portable entry, `npx -y -p loki-mode@<version> loki-mcp`; a user file gets this
 * installation's own server (`node <dist>/loki-mcp.js`) unless this copy runs from the npx cache (which does not
 * last) or --npx asks for the package. `--dry-run` writes nothing anywhere.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HOSTS,
  clineSkillDir,
  codexSkillDir,
  mergeJson,
  mergeToml,
  npxLaunch,
  planInstall,
  serverEntry,
  type Host,
  type Launch,
  type Scope,
} from '../install/hosts.js';
import type { Project } from '../project.js';
import { packRoot } from '../skills/pack.js';
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

type Change = 'added' | 'updated' | 'unchanged';

export function installCommand(project: Project, args: string[], opts: InstallOptions): number {
  const [name, ...extra] = args;
  if (!name || extra.length > 0 || !(HOSTS as readonly string[]).includes(name)) throw new CliError(USAGE, 2);
  const host = name as Host;
  if (opts.project && opts.user) throw new CliError('give --project or --user, not both', 2);
  if (opts.settings && host !== 'cline')
    throw new CliError('--settings is for cline only (its settings file location)', 2);
  // Claude Code and Codex default to the project (committed with it). Cline has one settings file per user;
  // there --project pins this project into the entry instead.
  const scope: Scope = opts.user || host === 'cline' ? 'user' : 'project';
  const pin = host === 'cline' && opts.project ? project.root : undefined;
  const home = project.env.HOME || os.homedir();
  const plan = planInstall(host, scope, project.root, project.env, home, opts.settings && path.resolve(opts.settings));
  const launch = launchCommand((opts.npx ?? false) || scope === 'project');
  const entry = serverEntry(host, launch, pin);
  const dryRun = opts.dryRun ?? false;
  let merged;
  try {
    const existing = readExisting(plan.file);
    merged = plan.format === 'json' ? mergeJson(existing, entry, plan.file) : mergeToml(existing, entry, plan.file);
  } catch (err) {
    if (err instanceof InstallError) throw new CliError(err.message, 1);
    throw err;
  }
  // Both CLIs list skills to the model, which is how the protocol reaches it: neither fetches MCP prompts.
  const skillDir =
    host === 'codex' ? codexSkillDir(project.env, home) : host === 'cline' ? clineSkillDir(home) : undefined;
  const skill = skillDir ? installSkill(skillDir, dryRun) : undefined;
  if (merged.change !== 'unchanged' && !dryRun) writeConfig(plan.file, merged.text);
  const notes = nextSteps(host, plan.scope, project.root, plan.file, pin);
  const result = {
    host,
    scope: plan.scope,
    file: plan.file,
    change: merged.change,
    dryRun,
    entry,
    previous: merged.previous ?? null,
    ...(skill ? { skill } : {}),
    notes,
  };
  if (opts.json) printJson(result);
  else {
    const verb = (c: Change) => ({ added: 'Added', updated: 'Updated', unchanged: 'Already up to date:' })[c];
    print(
      [
        `${dryRun ? '(dry run, nothing written) ' : ''}${verb(merged.change)} the "loki" MCP server in ${plan.file} (${host}, ${plan.scope} scope).`,
        merged.change === 'updated' ? `Was: ${JSON.stringify(merged.previous)}` : '',
        merged.change !== 'unchanged' ? `Now: ${JSON.stringify(entry)}` : '',
        skill
          ? `${verb(skill.change)} the loki-mode skill in ${skill.dir} (${skill.files} files; ${host === 'codex' ? 'Codex' : 'the Cline CLI'} lists it to the model).`
          : '',
        ...notes,
      ]
        .filter(Boolean)
        .join('\n'),
    );
  }
  return 0;
}

/** What the user does next, with real paths: never a placeholder to fill in. */
function nextSteps(host: Host, scope: Scope, root: string, file: string, pin: string | undefined): string[] {
  switch (host) {
    case 'claude':
      return scope === 'project'
        ? [
            `Next: commit ${path.relative(root, file)} (it runs the published package, so it works on any machine); start \`claude\` in this project and approve the project server (\`claude mcp get loki\` shows it).`,
            pluginHint(),
          ]
        : ['Next: `claude mcp get loki` shows it in every project.', pluginHint()];
    case 'codex':
      return [
        scope === 'project'
          ? `Codex reads ${path.relative(root, file)} only in a trusted project: trust ${root} when Codex asks, or add [projects."${root}"] trust_level = "trusted" to your Codex config.toml. Then \`codex mcp list\` shows the server.`
          : 'Next: `codex mcp list` shows it.',
        'Codex starts the server in the session\'s folder (where codex runs, or -C), and that is the project it works on. In a session, say "Loki Mode".',
      ];
    case 'cline':
      return [
        pin
          ? `This entry always serves ${pin}, whatever folder Cline opens (LOKI_PROJECT_DIR); run \`loki install cline\` without --project to serve the folder Cline runs in instead.`
          : 'The server works on the folder Cline starts it in: the Cline CLI starts it where `cline` runs (run it in your project; -c does not move it). Where Cline starts servers in / (the VS Code extension), the server refuses to guess: pin a project with `loki install cline --project`.',
        'Next: reload Cline (MCP Servers > Configure) to start it.',
      ];
  }
}

/** The plugin is installed from a loki-mode checkout (its marketplace); name this one when it is one. */
function pluginHint(): string {
  let root: string | undefined;
  try {
    root = packRoot();
  } catch {
    root = undefined;
  }
  if (root && fs.existsSync(path.join(root, '.claude-plugin', 'marketplace.json')))
    return `For the hooks and the skill, install the plugin: claude plugin marketplace add ${root}, then claude plugin install loki-mode@loki-mode.`;
  return `For the hooks and the skill, install the Claude Code plugin from a loki-mode repository clone (claude plugin marketplace add <the clone>): ${root ? path.join(root, 'docs', 'hosts.md') : 'docs/hosts.md'} says how.`;
}

/** This installation's own server, unless it runs from the npx cache (or `portable`): then the published package. */
export function launchCommand(portable: boolean): Launch {
  const server = fileURLToPath(new URL('./loki-mcp.js', import.meta.url));
  const ephemeral = server.split(path.sep).includes('_npx');
  if (portable || ephemeral || !fs.existsSync(server)) return npxLaunch(VERSION);
  return { command: process.execPath, args: [server] };
}

/**
 * The skill where the host reads skills: SKILL.md with skills/ and references/ beside it (SKILL.md names them by
 * relative path). Files of ours are written when they differ; anything else in the folder is left alone.
 */
function installSkill(dir: string, dryRun: boolean): { dir: string; change: Change; files: number } {
  const root = packRoot();
  const files: string[] = ['SKILL.md'];
  for (const sub of ['skills', 'references'])
    for (const f of fs.readdirSync(path.join(root, sub)).sort()) if (f.endsWith('.md')) files.push(`${sub}/${f}`);
  const existed = fs.existsSync(path.join(dir, 'SKILL.md'));
  const differing = files.filter((rel) => {
    const want = fs.readFileSync(path.join(root, rel));
    const target = path.join(dir, rel);
    const have = fs.existsSync(path.dirname(target)) ? readExisting(target) : undefined;
    return have === undefined || Buffer.compare(Buffer.from(have), want) !== 0;
  });
  if (!dryRun)
    for (const rel of differing) writeConfig(path.join(dir, rel), fs.readFileSync(path.join(root, rel), 'utf8'), 0o644);
  return { dir, change: differing.length === 0 ? 'unchanged' : existed ? 'updated' : 'added', files: files.length };
}

function readExisting(file: string): string | undefined {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) return undefined;
  return readFileIfExists(SafeDir.open(dir), path.basename(file), 16 * 1024 * 1024)?.toString('utf8');
}

/** Atomic, never through a link; creates the folder (e.g. ~/.codex) when missing. */
function writeConfig(file: string, text: string, mode = 0o600): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(SafeDir.open(dir), path.basename(file), text, { mode });
}
