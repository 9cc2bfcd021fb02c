/**
 * The Claude Code plugin, as a user gets it: the repository is a marketplace whose plugin is `plugin/` (small,
 * no package.json for Claude Code to `npm ci`, the skill by symbolic links that the install copies as files).
 * The plugin carries no built code; `plugin/launch.cjs` runs the published package of the plugin's version
 * (installed once into the plugin's data folder) or a built checkout's dist. The last test takes the real route
 * offline with the real Claude Code: marketplace add of a local clone, install, enabled, hooks loaded, server
 * connected, the installed copy's hook answering.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DIST, REPO_ROOT } from './helpers.js';
import { packRepo } from './pack.js';

const CLAUDE = path.join(REPO_ROOT, 'node_modules', '.bin', 'claude');
const PLUGIN = path.join(REPO_ROOT, 'plugin');
const read = <T>(rel: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8')) as T;
const pkg = read<{ name: string; version: string; files: string[] }>('package.json');
const EVENTS = {
  SessionStart: 'session-start',
  PreToolUse: 'pre-tool-use',
  PostToolUse: 'post-tool-use',
  Stop: 'stop',
  SessionEnd: 'session-end',
};

let scratch: string | undefined;
afterEach(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }) {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout, stderr: r.stderr };
}

/** Bytes of every file under dir, links followed (as Claude Code's copy follows them). */
function size(dir: string): number {
  let total = 0;
  for (const rel of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const st = fs.statSync(path.join(dir, rel));
    if (st.isFile()) total += st.size;
  }
  return total;
}

describe('the Claude Code plugin', () => {
  it(
    'passes `claude plugin validate`: the marketplace strictly, the plugin with only its skills link noted',
    { timeout: 120_000 },
    () => {
      // skills/ is a link to the repository's modules (SKILL.md reads skills/00-index.md by path). The validator
      // does not follow a folder link and warns; an install copies it as a folder (the real route below checks),
      // and it holds modules, not skills, so Claude Code loading nothing from it is what we want.
      const plugin = run(CLAUDE, ['plugin', 'validate', 'plugin'], { cwd: REPO_ROOT });
      expect(plugin).toMatchObject({ code: 0, out: expect.stringMatching(/Validation passed/) });
      // The plugin's own warnings come before the (advisory) plugin directory checks.
      const own = plugin.out.split('Plugin directory checks')[0]!;
      const warnings = [...own.matchAll(/❯ ([^\n]*)/g)].map((m) => m[1]!);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^directory: This directory is a symlink/);
      expect(run(CLAUDE, ['plugin', 'validate', '.', '--strict'], { cwd: REPO_ROOT })).toMatchObject({
        code: 0,
        out: expect.stringMatching(/Validating marketplace manifest[\s\S]*Validation passed/),
      });
    },
  );

  it('names and versions agree with package.json; the plugin folder is small and names its hooks once', () => {
    const plugin = read<Record<string, unknown>>('plugin/.claude-plugin/plugin.json');
    const market = read<{ plugins: { name: string; source: string; version: string }[] }>(
      '.claude-plugin/marketplace.json',
    );
    expect(plugin).toMatchObject({ name: pkg.name, version: pkg.version, skills: ['./'], mcpServers: './.mcp.json' });
    // Claude Code loads hooks/hooks.json by itself; naming it again in the manifest is a "duplicate hooks file"
    // that makes Claude Code 2.1.197 refuse the whole plugin.
    expect(plugin).not.toHaveProperty('hooks');
    expect(market.plugins).toEqual([
      expect.objectContaining({ name: pkg.name, source: './plugin', version: pkg.version }),
    ]);
    // A package.json would make Claude Code run `npm ci` in its copy (the repository's devDependencies: 1.4 GB).
    expect(fs.existsSync(path.join(PLUGIN, 'package.json'))).toBe(false);
    for (const link of ['SKILL.md', 'skills', 'references'])
      expect(fs.readlinkSync(path.join(PLUGIN, link))).toBe(`../${link}`);
    expect(size(PLUGIN)).toBeLessThan(400 * 1024);
    const mcp = read<{ mcpServers: Record<string, unknown> }>('plugin/.mcp.json');
    expect(mcp.mcpServers).toEqual({
      loki: {
        command: 'node',
        args: ['${CLAUDE_PLUGIN_ROOT}/launch.cjs', 'mcp'],
        env: { LOKI_PROJECT_DIR: '${CLAUDE_PROJECT_DIR}' },
      },
    });
  });

  it('every hook runs an event the hook entry handles through the launcher, and every handled event is wired', () => {
    const hooks = read<{ hooks: Record<string, { matcher?: string; hooks: { type: string; command: string }[] }[]> }>(
      'plugin/hooks/hooks.json',
    );
    const wired = new Map<string, string>();
    for (const [event, groups] of Object.entries(hooks.hooks))
      for (const g of groups)
        for (const h of g.hooks) {
          const m = /^node "\$\{CLAUDE_PLUGIN_ROOT\}\/launch\.cjs" ([a-z-]+)$/.exec(h.command);
          expect(m, h.command).not.toBeNull();
          wired.set(event, m![1]!);
        }
    expect(Object.fromEntries(wired)).toEqual(EVENTS);
    expect(hooks.hooks.PreToolUse![0]!.matcher).toBe('Bash|Write|Edit|MultiEdit|NotebookEdit');
    // From this (built) checkout the launcher runs its dist; the entry refuses events it does not know, so a typo
    // in hooks.json would show.
    expect(fs.existsSync(path.join(DIST, 'loki-hook.cjs'))).toBe(true);
    const r = run(process.execPath, [path.join(PLUGIN, 'launch.cjs'), 'no-such-event'], {
      cwd: REPO_ROOT,
      input: '{}',
    });
    expect(r.stderr).toMatch(
      /unknown event "no-such-event"; use one of session-start, pre-tool-use, post-tool-use, stop, session-end/,
    );
  });

  it('without the package and without npm reaching it, the guard refuses in a Loki project and says why; other hooks let go', () => {
    scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-plugin-')));
    const copy = path.join(scratch, 'copy');
    fs.cpSync(PLUGIN, copy, { recursive: true, dereference: true });
    const project = path.join(scratch, 'project');
    fs.mkdirSync(path.join(project, '.loki'), { recursive: true });
    const env = {
      ...process.env,
      CLAUDE_PLUGIN_DATA: path.join(scratch, 'data'),
      CLAUDE_PROJECT_DIR: project,
      LOKI_PLUGIN_PACKAGE: path.join(scratch, 'no-such-package.tgz'),
      npm_config_offline: 'true',
    };
    const input = JSON.stringify({ tool_name: 'Bash', tool_input: { command: 'ls' }, cwd: project });
    const guard = run(process.execPath, [path.join(copy, 'launch.cjs'), 'pre-tool-use'], { cwd: project, env, input });
    expect(guard.code).toBe(0);
    expect(JSON.parse(guard.stdout)).toMatchObject({
      hookSpecificOutput: {
        permissionDecision: 'deny',
        permissionDecisionReason: expect.stringMatching(/could not install .*no-such-package\.tgz with npm/),
      },
    });
    const stop = run(process.execPath, [path.join(copy, 'launch.cjs'), 'stop'], { cwd: project, env, input: '{}' });
    expect(stop).toMatchObject({ code: 0, stdout: '' });
    const server = run(process.execPath, [path.join(copy, 'launch.cjs'), 'mcp'], { cwd: project, env, input: '' });
    expect(server.code).toBe(1);
    expect(fs.readdirSync(path.join(scratch, 'data'))).toEqual([]);
  });

  it(
    'the real route, offline: marketplace add of a local clone, install, enabled, hooks loaded, the server connected',
    { timeout: 240_000 },
    () => {
      scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-plugin-')));
      const home = path.join(scratch, 'home');
      const project = path.join(scratch, 'project');
      fs.mkdirSync(home);
      fs.mkdirSync(project);
      // The package the plugin's launcher installs: this build, packed, standing in for the published one.
      const tarball = path.join(scratch, packRepo(scratch).filename);
      const clone = path.join(scratch, 'clone');
      expect(run('git', ['clone', '-q', REPO_ROOT, clone], { cwd: scratch }).code).toBe(0);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        HOME: home,
        CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
        LOKI_HOME: path.join(home, '.loki'),
        LOKI_PLUGIN_PACKAGE: tarball,
        npm_config_offline: 'true',
        npm_config_cache: path.join(scratch, 'npm-cache'),
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      };
      delete env.CLAUDE_PROJECT_DIR;
      delete env.LOKI_PROJECT_DIR;
      const claude = (...args: string[]) => run(CLAUDE, args, { cwd: project, env });
      expect(claude('plugin', 'marketplace', 'add', clone)).toMatchObject({ code: 0 });
      expect(claude('plugin', 'install', 'loki-mode@loki-mode')).toMatchObject({ code: 0 });
      const list = JSON.parse(claude('plugin', 'list', '--json').stdout) as {
        id: string;
        enabled: boolean;
        installPath: string;
      }[];
      const entry = list.find((p) => p.id === 'loki-mode@loki-mode');
      expect(entry).toMatchObject({ enabled: true });
      // What Claude Code keeps of the plugin: the manifests, the launcher and the skill, no code, no node_modules.
      expect(fs.existsSync(path.join(entry!.installPath, 'node_modules'))).toBe(false);
      expect(size(entry!.installPath)).toBeLessThan(400 * 1024);
      for (const rel of ['SKILL.md', 'skills/00-index.md', 'references/tools.md'])
        expect(fs.lstatSync(path.join(entry!.installPath, rel)).isFile(), rel).toBe(true);
      expect(claude('plugin', 'details', 'loki-mode@loki-mode').out).toMatch(
        /Skills \(1\)\s+loki-mode[\s\S]*Hooks \(5\)\s+SessionStart, PreToolUse, PostToolUse, Stop, SessionEnd[\s\S]*MCP servers \(1\)\s+loki/,
      );
      expect(claude('mcp', 'list').out).toMatch(/plugin:loki-mode:loki: .*launch\.cjs mcp - ✔ Connected/);
      // The launcher installed the package once into the plugin's data folder; the installed copy's hook runs it.
      const data = path.join(home, '.claude', 'plugins', 'data', 'loki-mode-loki-mode');
      expect(fs.existsSync(path.join(data, pkg.version, 'node_modules', 'loki-mode', 'mcp-server', 'dist'))).toBe(true);
      const hook = run(process.execPath, [path.join(entry!.installPath, 'launch.cjs'), 'no-such-event'], {
        cwd: project,
        env: { ...env, CLAUDE_PLUGIN_DATA: data, LOKI_PLUGIN_PACKAGE: path.join(scratch, 'not-needed.tgz') },
        input: '{}',
      });
      expect(hook.stderr).toMatch(/unknown event "no-such-event"/);
    },
  );
});
