/**
 * The Claude Code plugin agrees with the code: the manifests pass Claude Code's own validator, name and version
 * match package.json, .mcp.json starts the built server under the key the docs use, and every hook command runs an
 * event the hook entry handles (and every handled event is wired).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIST, REPO_ROOT } from './helpers.js';

const read = <T>(rel: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8')) as T;
const pkg = read<{ name: string; version: string; files: string[] }>('package.json');

function validate(target: string): { code: number | null; out: string } {
  const r = spawnSync(
    path.join(REPO_ROOT, 'node_modules', '.bin', 'claude'),
    ['plugin', 'validate', target, '--strict'],
    { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
  );
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('the Claude Code plugin', () => {
  it('passes `claude plugin validate --strict` for the plugin and the marketplace', { timeout: 120_000 }, () => {
    expect(validate('.claude-plugin/plugin.json')).toMatchObject({
      code: 0,
      out: expect.stringMatching(/Validation passed/),
    });
    expect(validate('.')).toMatchObject({
      code: 0,
      out: expect.stringMatching(/Validating marketplace manifest[\s\S]*Validation passed/),
    });
  });

  it('names, versions and paths agree with package.json and the build', () => {
    const plugin = read<{ name: string; version: string; skills: string[]; hooks: string; mcpServers: string }>(
      '.claude-plugin/plugin.json',
    );
    const market = read<{ name: string; plugins: { name: string; source: string; version: string }[] }>(
      '.claude-plugin/marketplace.json',
    );
    expect(plugin.name).toBe(pkg.name);
    expect(plugin.version).toBe(pkg.version);
    expect(plugin.skills).toEqual(['./']);
    expect(market.plugins).toEqual([expect.objectContaining({ name: pkg.name, source: './', version: pkg.version })]);
    for (const f of ['.claude-plugin', '.mcp.json', 'hooks', 'SKILL.md']) expect(pkg.files).toContain(f);
    const mcp = read<{ mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> }>(
      '.mcp.json',
    );
    expect(Object.keys(mcp.mcpServers)).toEqual(['loki']);
    expect(mcp.mcpServers.loki).toMatchObject({
      command: 'node',
      args: ['${CLAUDE_PLUGIN_ROOT}/mcp-server/dist/loki-mcp.js'],
    });
    expect(fs.existsSync(path.join(DIST, 'loki-mcp.js'))).toBe(true);
  });

  it('every hook runs an event the hook entry handles, and every handled event is wired', () => {
    const hooks = read<{ hooks: Record<string, { matcher?: string; hooks: { type: string; command: string }[] }[]> }>(
      'hooks/hooks.json',
    );
    const wired = new Map<string, string>();
    for (const [event, groups] of Object.entries(hooks.hooks)) {
      for (const g of groups) {
        for (const h of g.hooks) {
          const m = /^node "\$\{CLAUDE_PLUGIN_ROOT\}\/mcp-server\/dist\/loki-hook\.cjs" ([a-z-]+)$/.exec(h.command);
          expect(m, h.command).not.toBeNull();
          wired.set(event, m![1]!);
        }
      }
    }
    expect(Object.fromEntries(wired)).toEqual({
      SessionStart: 'session-start',
      PreToolUse: 'pre-tool-use',
      PostToolUse: 'post-tool-use',
      Stop: 'stop',
      SessionEnd: 'session-end',
    });
    // The entry refuses events it does not know, so a typo in hooks.json would show.
    const r = spawnSync(process.execPath, [path.join(DIST, 'loki-hook.cjs'), 'no-such-event'], {
      input: '{}',
      encoding: 'utf8',
    });
    expect(r.stderr).toMatch(
      /unknown event "no-such-event"; use one of session-start, pre-tool-use, post-tool-use, stop, session-end/,
    );
    expect(hooks.hooks.PreToolUse![0]!.matcher).toBe('Bash|Write|Edit|MultiEdit|NotebookEdit');
  });
});
