/**
 * `loki install` for each host, through the built CLI with a private HOME: the files it writes are read back by
 * the host's own parser where one runs here (Claude Code's `claude mcp get`), otherwise parsed (TOML, JSON) and
 * checked for the documented keys. Every run is idempotent and keeps what else the file held.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterEach, describe, expect, it } from 'vitest';
import { DIST, REPO_ROOT, tempProject, type TempProject } from './helpers.js';

const CLAUDE = path.join(REPO_ROOT, 'node_modules', '.bin', 'claude');
let p: TempProject | undefined;
afterEach(() => {
  p?.cleanup();
  p = undefined;
});

function setup(): TempProject {
  p = tempProject({ git: true });
  return p;
}

/** HOME and Claude Code's config folder both private to the test, for loki and for claude alike. */
function hostEnv(): NodeJS.ProcessEnv {
  return { ...p!.env, HOME: p!.home, CLAUDE_CONFIG_DIR: path.join(p!.home, '.claude') };
}

function loki(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], {
    cwd: p!.root,
    env: hostEnv(),
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

function claude(...args: string[]): string {
  const r = spawnSync(CLAUDE, args, { cwd: p!.root, env: hostEnv(), encoding: 'utf8', timeout: 60_000 });
  return r.stdout + r.stderr;
}

describe('loki install', () => {
  it(
    'claude, project scope: .mcp.json that `claude mcp get` reads; a second run changes nothing; other servers kept',
    { timeout: 60_000 },
    () => {
      setup();
      fs.writeFileSync(
        path.join(p!.root, '.mcp.json'),
        JSON.stringify({ mcpServers: { other: { command: 'other-server' } } }),
      );
      expect(loki('install', 'claude')).toMatchObject({
        code: 0,
        out: expect.stringMatching(/^Added the "loki" MCP server in .*\.mcp\.json \(claude, project scope\)/),
      });
      const written = fs.readFileSync(path.join(p!.root, '.mcp.json'), 'utf8');
      expect(JSON.parse(written)).toMatchObject({
        mcpServers: {
          other: { command: 'other-server' },
          loki: { type: 'stdio', command: process.execPath, args: [path.join(DIST, 'loki-mcp.js')] },
        },
      });
      expect(loki('install', 'claude')).toMatchObject({ code: 0, out: expect.stringMatching(/^Already up to date/) });
      expect(fs.readFileSync(path.join(p!.root, '.mcp.json'), 'utf8')).toBe(written);
      const got = claude('mcp', 'get', 'loki');
      expect(got).toMatch(/Scope: Project config/);
      expect(got).toContain(path.join(DIST, 'loki-mcp.js'));
    },
  );

  it(
    'claude, user scope: the user file keeps its other keys and `claude mcp get` sees the server',
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
        mcpServers: { loki: { command: process.execPath } },
      });
      expect(claude('mcp', 'get', 'loki')).toMatch(/Scope: User config/);
    },
  );

  it('codex: [mcp_servers.loki] with a start-up timeout, the rest of config.toml (comments too) kept, idempotent', () => {
    setup();
    const codexHome = path.join(p!.home, '.codex');
    fs.mkdirSync(codexHome);
    const before =
      '# my codex settings\nmodel = "gpt-5"\n\n[mcp_servers.other]\ncommand = "other"\nargs = ["a"]\n\n[mcp_servers.loki]\ncommand = "stale"\n\n[mcp_servers.loki.env]\nOLD = "1"\n';
    fs.writeFileSync(path.join(codexHome, 'config.toml'), before);
    expect(loki('install', 'codex', '--user')).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^Updated .*config\.toml[\s\S]*Was: \{"command":"stale"/),
    });
    const text = fs.readFileSync(path.join(codexHome, 'config.toml'), 'utf8');
    expect(text.startsWith('# my codex settings\nmodel = "gpt-5"')).toBe(true);
    const doc = parseToml(text) as { model: string; mcp_servers: Record<string, Record<string, unknown>> };
    expect(doc.model).toBe('gpt-5');
    expect(doc.mcp_servers.other).toEqual({ command: 'other', args: ['a'] });
    expect(doc.mcp_servers.loki).toEqual({
      command: process.execPath,
      args: [path.join(DIST, 'loki-mcp.js')],
      startup_timeout_sec: 60,
      tool_timeout_sec: 600,
    });
    expect(loki('install', 'codex', '--user').out).toMatch(/^Already up to date/);
    expect(fs.readFileSync(path.join(codexHome, 'config.toml'), 'utf8')).toBe(text);
  });

  it('codex, project scope, honours the project dir; CODEX_HOME moves the user file', () => {
    setup();
    expect(loki('install', 'codex').code).toBe(0);
    const doc = parseToml(fs.readFileSync(path.join(p!.root, '.codex', 'config.toml'), 'utf8')) as {
      mcp_servers: { loki: { env: Record<string, string> } };
    };
    expect(doc.mcp_servers.loki.env).toEqual({ LOKI_PROJECT_DIR: p!.root });
    const elsewhere = path.join(p!.home, 'codex-home');
    const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), 'install', 'codex', '--user', '--json'], {
      cwd: p!.root,
      env: { ...p!.env, HOME: p!.home, CODEX_HOME: elsewhere },
      encoding: 'utf8',
    });
    expect(JSON.parse(r.stdout)).toMatchObject({ file: path.join(elsewhere, 'config.toml'), change: 'added' });
  });

  it('cline: the settings file with the project dir (Cline starts servers in /), and the documented keys', () => {
    setup();
    expect(loki('install', 'cline').code).toBe(0);
    const file = path.join(p!.home, '.cline', 'data', 'settings', 'cline_mcp_settings.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({
      mcpServers: {
        loki: {
          command: process.execPath,
          args: [path.join(DIST, 'loki-mcp.js')],
          env: { LOKI_PROJECT_DIR: p!.root },
          disabled: false,
          autoApprove: [],
          timeout: 600,
        },
      },
    });
    const vscode = path.join(p!.home, 'vscode', 'cline_mcp_settings.json');
    expect(loki('install', 'cline', '--settings', vscode, '--npx').code).toBe(0);
    const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    expect(JSON.parse(fs.readFileSync(vscode, 'utf8')).mcpServers.loki).toMatchObject({
      command: 'npx',
      args: ['-y', '-p', `loki-mode@${version}`, 'loki-mcp'],
    });
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
