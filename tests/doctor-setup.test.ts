/**
 * `loki doctor` checks what a user's setup needs besides the project's state: git, the Node version, each host's
 * registration of the server for this project (found in the host's own file, and starting), the Codex skill, and
 * the Claude Code plugin's files and the package its launcher runs. Through the built CLI with a private HOME.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DIST, REPO_ROOT, tempProject, type TempProject } from './helpers.js';

let p: TempProject | undefined;
afterEach(() => {
  p?.cleanup();
  p = undefined;
});

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

function loki(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], {
    cwd: p!.root,
    env: {
      ...p!.env,
      HOME: p!.home,
      CLAUDE_CONFIG_DIR: path.join(p!.home, '.claude'),
      CODEX_HOME: path.join(p!.home, '.codex'),
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

const line = (level: string, name: string, detail: string) =>
  new RegExp(`^${level}\\s+${name.replace(/[()]/g, '\\$&')}\\s+.*${detail}`, 'm');

describe('loki doctor: the setup', () => {
  it('names git and Node, and warns when no host has the server', () => {
    p = tempProject({ git: true });
    const r = loki('doctor');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^ok\s+node\s+Node \d+/m);
    expect(r.out).toMatch(/^ok\s+git\s+git version/m);
    expect(r.out).toMatch(line('warn', 'hosts', 'no host has the loki server registered for this project'));
  });

  it('warns outside a git repository', () => {
    p = tempProject();
    expect(loki('doctor').out).toMatch(line('warn', 'git', 'is not a git repository'));
  });

  it(
    'finds each registration and starts its server; one that does not start fails with the fix',
    { timeout: 60_000 },
    () => {
      p = tempProject({ git: true });
      expect(loki('install', 'codex', '--user').code).toBe(0);
      expect(loki('install', 'cline').code).toBe(0);
      let r = loki('doctor');
      expect(r.code, r.out).toBe(0);
      expect(r.out).toMatch(line('ok', 'codex (user)', `starts \\(loki-mode ${VERSION}\\)`));
      expect(r.out).toMatch(line('ok', 'cline', `starts \\(loki-mode ${VERSION}\\)`));
      // A server that is gone (the checkout moved, the package removed).
      const userFile = path.join(p.home, '.claude', '.claude.json');
      fs.mkdirSync(path.dirname(userFile), { recursive: true });
      fs.writeFileSync(
        userFile,
        JSON.stringify({ mcpServers: { loki: { command: 'node', args: ['/nowhere/loki-mcp.js'] } } }),
      );
      // The Codex skill removed: Codex would not list the protocol to the model.
      fs.rmSync(path.join(p.home, '.codex', 'skills'), { recursive: true });
      r = loki('doctor');
      expect(r.code).toBe(1);
      expect(r.out).toMatch(
        line(
          'FAIL',
          'claude (user)',
          'node /nowhere/loki-mcp.js, which does not start \\(Error: Cannot find module .*run loki install claude again',
        ),
      );
      expect(r.out).toMatch(line('warn', 'codex skill', 'loki install codex --user adds it'));
    },
  );

  it('fails the wrong npx form and says which is right', () => {
    p = tempProject({ git: true });
    fs.writeFileSync(
      path.join(p.root, '.mcp.json'),
      JSON.stringify({ mcpServers: { loki: { command: 'npx', args: ['-y', 'loki-mcp'] } } }),
    );
    const r = loki('doctor');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(line('FAIL', 'claude (project .mcp.json)', 'the form is npx -y -p loki-mode loki-mcp'));
  });

  it("checks the Claude Code plugin's files and the package its launcher installed", () => {
    p = tempProject({ git: true });
    const plugins = path.join(p.home, '.claude', 'plugins');
    const installPath = path.join(plugins, 'cache', 'loki-mode', 'loki-mode', VERSION);
    fs.mkdirSync(installPath, { recursive: true });
    fs.writeFileSync(
      path.join(plugins, 'installed_plugins.json'),
      JSON.stringify({
        version: 2,
        plugins: { 'loki-mode@loki-mode': [{ scope: 'user', installPath, version: VERSION }] },
      }),
    );
    let r = loki('doctor');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(line('FAIL', 'claude plugin', 'lacks launch.cjs, .mcp.json, hooks/hooks.json, SKILL.md'));
    fs.cpSync(path.join(REPO_ROOT, 'plugin'), installPath, { recursive: true, dereference: true });
    r = loki('doctor');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(line('warn', 'claude plugin', 'its first session installs the loki-mode package'));
    // The package as the launcher installs it: this build stands in for the published one.
    const dist = path.join(
      plugins,
      'data',
      'loki-mode-loki-mode',
      VERSION,
      'node_modules',
      'loki-mode',
      'mcp-server',
      'dist',
    );
    fs.mkdirSync(path.dirname(dist), { recursive: true });
    fs.cpSync(DIST, dist, { recursive: true });
    fs.writeFileSync(
      path.join(dist, '..', '..', 'package.json'),
      JSON.stringify({ name: 'loki-mode', type: 'module' }),
    );
    r = loki('doctor');
    expect(r.out).toMatch(line('ok', 'claude plugin', 'its hooks and server built in .* \\(starts\\)'));
    fs.rmSync(path.join(dist, 'hook-guard.cjs'));
    expect(loki('doctor').out).toMatch(line('FAIL', 'claude plugin', 'lacks hook-guard.cjs'));
  });
});
