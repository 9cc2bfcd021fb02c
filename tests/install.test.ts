/**
 * `loki install` for each host, through the built CLI with a private HOME: the files it writes are read back by
 * the host's own CLI where one runs here (`claude mcp get`, `codex mcp get`), otherwise parsed and checked for the
 * documented keys. A project file (committed) gets the portable npx entry, a user file may name this
 * installation; every run is idempotent, keeps what else the file held, and `--dry-run` writes nothing anywhere.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterEach, describe, expect, it } from 'vitest';
import { DIST, REPO_ROOT, tempProject, type TempProject } from './helpers.js';

const BIN = path.join(REPO_ROOT, 'node_modules', '.bin');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;
const NPX = { command: 'npx', args: ['-y', '-p', `loki-mode@${VERSION}`, 'loki-mcp'] };
const OWN = { command: process.execPath, args: [path.join(DIST, 'loki-mcp.js')] };

let p: TempProject | undefined;
afterEach(() => {
  p?.cleanup();
  p = undefined;
});

function setup(): TempProject {
  p = tempProject({ git: true });
  return p;
}

/** HOME and the hosts' config folders all private to the test, for loki and for the hosts alike. */
function hostEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...p!.env,
    HOME: p!.home,
    CLAUDE_CONFIG_DIR: path.join(p!.home, '.claude'),
    CODEX_HOME: path.join(p!.home, '.codex'),
    ...extra,
  };
}

function loki(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], {
    cwd: p!.root,
    env: hostEnv(),
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

function host(bin: string, ...args: string[]): string {
  const r = spawnSync(path.join(BIN, bin), args, { cwd: p!.root, env: hostEnv(), encoding: 'utf8', timeout: 60_000 });
  return r.stdout + r.stderr;
}

/** Every file and folder under `dir` with its size and mtime: what "nothing written" is checked against. */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((rel) => !rel.split(path.sep).includes('.git'))
    .map((rel) => {
      const st = fs.statSync(path.join(dir, rel));
      return `${rel} ${st.size} ${st.mtimeMs}`;
    })
    .sort();
}

describe('loki install', () => {
  it(
    'claude, project scope: a portable npx entry in .mcp.json that `claude mcp get` reads; idempotent; other servers kept',
    { timeout: 60_000 },
    () => {
      setup();
      fs.writeFileSync(
        path.join(p!.root, '.mcp.json'),
        JSON.stringify({ mcpServers: { other: { command: 'other-server' } } }),
      );
      const first = loki('install', 'claude');
      expect(first).toMatchObject({
        code: 0,
        out: expect.stringMatching(/^Added the "loki" MCP server in .*\.mcp\.json \(claude, project scope\)/),
      });
      // The plugin hint names this checkout (a real marketplace), never a placeholder.
      expect(first.out).toContain(`claude plugin marketplace add ${REPO_ROOT}`);
      const written = fs.readFileSync(path.join(p!.root, '.mcp.json'), 'utf8');
      // The file is committed: nothing in it may name this machine.
      expect(written).not.toContain(REPO_ROOT);
      expect(written).not.toContain(process.execPath);
      expect(JSON.parse(written)).toEqual({
        mcpServers: { other: { command: 'other-server' }, loki: { type: 'stdio', ...NPX, env: {} } },
      });
      expect(loki('install', 'claude')).toMatchObject({ code: 0, out: expect.stringMatching(/^Already up to date/) });
      expect(fs.readFileSync(path.join(p!.root, '.mcp.json'), 'utf8')).toBe(written);
      const got = host('claude', 'mcp', 'get', 'loki');
      expect(got).toMatch(/Scope: Project config/);
      expect(got).toMatch(new RegExp(`Command: npx\\n\\s*Args: -y -p loki-mode@${VERSION} loki-mcp`));
    },
  );

  it(
    'claude, user scope: this installation by absolute path; the user file keeps its other keys',
    { timeout: 60_000 },
    () => {
      setup();
      const userFile = path.join(p!.home, '.claude', '.claude.json');
      fs.mkdirSync(path.dirname(userFile));
      fs.writeFileSync(userFile, JSON.stringify({ numStartups: 3, projects: {} }));
      expect(loki('install', 'claude', '--user').code).toBe(0);
      expect(JSON.parse(fs.readFileSync(userFile, 'utf8'))).toMatchObject({
        numStartups: 3,
        projects: {},
        mcpServers: { loki: OWN },
      });
      expect(host('claude', 'mcp', 'get', 'loki')).toMatch(/Scope: User config/);
      // --npx asks for the published package in a user file too.
      expect(loki('install', 'claude', '--user', '--npx').code).toBe(0);
      expect(JSON.parse(fs.readFileSync(userFile, 'utf8')).mcpServers.loki).toMatchObject(NPX);
    },
  );

  it(
    'codex, user scope: [mcp_servers.loki] that `codex exec` can use (tools approved), the skill where Codex reads skills, the rest of config.toml kept',
    { timeout: 60_000 },
    () => {
      setup();
      const codexHome = path.join(p!.home, '.codex');
      fs.mkdirSync(codexHome);
      const before =
        '# my codex settings\nmodel = "gpt-5"\n\n[mcp_servers.other]\ncommand = "other"\nargs = ["a"]\n\n[mcp_servers.loki]\ncommand = "stale"\n\n[mcp_servers.loki.env]\nOLD = "1"\n';
      fs.writeFileSync(path.join(codexHome, 'config.toml'), before);
      const out = loki('install', 'codex', '--user');
      expect(out).toMatchObject({
        code: 0,
        out: expect.stringMatching(/^Updated .*config\.toml[\s\S]*Was: \{"command":"stale"/),
      });
      expect(out.out).toContain(`Added the loki-mode skill in ${path.join(codexHome, 'skills', 'loki-mode')}`);
      const text = fs.readFileSync(path.join(codexHome, 'config.toml'), 'utf8');
      expect(text.startsWith('# my codex settings\nmodel = "gpt-5"')).toBe(true);
      const doc = parseToml(text) as { model: string; mcp_servers: Record<string, Record<string, unknown>> };
      expect(doc.model).toBe('gpt-5');
      expect(doc.mcp_servers.other).toEqual({ command: 'other', args: ['a'] });
      expect(doc.mcp_servers.loki).toEqual({
        ...OWN,
        startup_timeout_sec: 60,
        tool_timeout_sec: 600,
        default_tools_approval_mode: 'approve',
      });
      // Codex's own parser accepts the entry and its approval mode (an unknown key or value is a load error).
      const got = host('codex', 'mcp', 'get', 'loki');
      expect(got).toMatch(/default_tools_approval_mode: approve/);
      expect(got).toContain(path.join(DIST, 'loki-mcp.js'));
      // The skill: SKILL.md (with the name Codex lists) and the modules and references it names by path.
      const skill = path.join(codexHome, 'skills', 'loki-mode');
      expect(fs.readFileSync(path.join(skill, 'SKILL.md'), 'utf8')).toBe(
        fs.readFileSync(path.join(REPO_ROOT, 'SKILL.md'), 'utf8'),
      );
      expect(fs.readFileSync(path.join(skill, 'SKILL.md'), 'utf8')).toMatch(/^---\nname: loki-mode\n/);
      expect(fs.existsSync(path.join(skill, 'skills', '00-index.md'))).toBe(true);
      expect(fs.existsSync(path.join(skill, 'references', 'tools.md'))).toBe(true);
      const again = loki('install', 'codex', '--user');
      expect(again.out).toMatch(/^Already up to date[\s\S]*Already up to date: the loki-mode skill/);
      expect(fs.readFileSync(path.join(codexHome, 'config.toml'), 'utf8')).toBe(text);
    },
  );

  it('codex, project scope: portable (npx, no path of this machine), and the trust Codex needs is said', () => {
    setup();
    const r = loki('install', 'codex');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Codex reads .codex/config.toml only in a trusted project: trust ${p!.root}`);
    const text = fs.readFileSync(path.join(p!.root, '.codex', 'config.toml'), 'utf8');
    expect(text).not.toContain(p!.root);
    expect(text).not.toContain(REPO_ROOT);
    expect((parseToml(text) as { mcp_servers: { loki: unknown } }).mcp_servers.loki).toEqual({
      ...NPX,
      startup_timeout_sec: 60,
      tool_timeout_sec: 600,
      default_tools_approval_mode: 'approve',
    });
    const elsewhere = path.join(p!.home, 'codex-home');
    const json = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), 'install', 'codex', '--user', '--json'], {
      cwd: p!.root,
      env: { ...p!.env, HOME: p!.home, CODEX_HOME: elsewhere },
      encoding: 'utf8',
    });
    expect(JSON.parse(json.stdout)).toMatchObject({
      file: path.join(elsewhere, 'config.toml'),
      change: 'added',
      skill: { dir: path.join(elsewhere, 'skills', 'loki-mode'), change: 'added' },
    });
  });

  it('cline: one entry that serves the folder Cline starts it in; --project pins this project', () => {
    setup();
    const r = loki('install', 'cline');
    expect(r.code).toBe(0);
    const file = path.join(p!.home, '.cline', 'data', 'settings', 'cline_mcp_settings.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      mcpServers: { loki: { ...OWN, disabled: false, autoApprove: [], timeout: 600 } },
    });
    expect(r.out).toMatch(/pin a project with `loki install cline --project`/);
    // The skill where the Cline CLI lists skills to the model.
    const skill = path.join(p!.home, '.cline', 'skills', 'loki-mode', 'SKILL.md');
    expect(fs.readFileSync(skill, 'utf8')).toBe(fs.readFileSync(path.join(REPO_ROOT, 'SKILL.md'), 'utf8'));
    expect(r.out).toContain(`the loki-mode skill in ${path.dirname(skill)}`);
    const pinned = loki('install', 'cline', '--project');
    expect(pinned.out).toContain(`This entry always serves ${p!.root}`);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).mcpServers.loki).toEqual({
      ...OWN,
      env: { LOKI_PROJECT_DIR: p!.root },
      disabled: false,
      autoApprove: [],
      timeout: 600,
    });
    const vscode = path.join(p!.home, 'vscode', 'cline_mcp_settings.json');
    expect(loki('install', 'cline', '--settings', vscode, '--npx').code).toBe(0);
    expect(JSON.parse(fs.readFileSync(vscode, 'utf8')).mcpServers.loki).toMatchObject(NPX);
  });

  it('--dry-run writes nothing anywhere (project, HOME, LOKI_HOME, compile cache), and no message has a placeholder', () => {
    setup();
    // LOKI_HOME is inside HOME here; no other place is given to the process to write.
    const before = [tree(p!.root), tree(p!.home)];
    for (const args of [
      ['claude'],
      ['claude', '--user'],
      ['codex'],
      ['codex', '--user'],
      ['cline'],
      ['cline', '--project'],
    ]) {
      const r = loki('install', ...args, '--dry-run');
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(/^\(dry run, nothing written\) Added/);
      // `<this repository>`, `<path>` and the like: a message says what to do with real names.
      expect(r.out).not.toMatch(/<[a-z][^>]*>/i);
    }
    expect([tree(p!.root), tree(p!.home)]).toEqual(before);
  });

  it('refuses a broken config file and bad usage, changing nothing', () => {
    setup();
    fs.writeFileSync(path.join(p!.root, '.mcp.json'), '{ "mcpServers": ');
    expect(loki('install', 'claude')).toMatchObject({
      code: 1,
      out: expect.stringMatching(/is not valid JSON .* Nothing was changed/),
    });
    expect(fs.readFileSync(path.join(p!.root, '.mcp.json'), 'utf8')).toBe('{ "mcpServers": ');
    expect(loki('install', 'cursor').code).toBe(2);
    expect(loki('install', 'claude', '--project', '--user').code).toBe(2);
    expect(loki('install', 'codex', '--settings', 'x').code).toBe(2);
    expect(loki('install', 'claude', '--dry-run', '--json').code).toBe(1);
  });
});
