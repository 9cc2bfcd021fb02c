/**
 * The npm package as a user gets it, offline: `npm pack`, the tarball installed in a fresh folder, the server
 * answering `initialize` through `npx -p loki-mode loki-mcp` and `loki demo` through `npx -p loki-mode loki`.
 * The package is small (no source maps, one server bundle), depends on nothing (the bundles load only Node
 * built-ins), and carries what its README links to. Everywhere the repository names an npx command for loki,
 * it is the one form that works: `npx -y -p loki-mode loki-mcp` (`loki-mcp` alone is nobody's package).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.js';
import { packRepo, type Packed } from './pack.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown> & {
  version: string;
};
let scratch: string;
let packed: Packed;
let app: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-package-')));
  packed = packRepo(scratch);
  app = path.join(scratch, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "app", "private": true }\n');
  const home = path.join(scratch, 'home');
  fs.mkdirSync(home);
  env = {
    ...process.env,
    HOME: home,
    LOKI_HOME: path.join(home, '.loki'),
    // Offline: npm may use only what is on this machine.
    npm_config_offline: 'true',
    npm_config_cache: path.join(scratch, 'npm-cache'),
    npm_config_update_notifier: 'false',
  };
  delete env.LOKI_PROJECT_DIR;
  delete env.CLAUDE_PROJECT_DIR;
  const install = spawnSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--ignore-scripts', path.join(scratch, packed.filename)],
    { cwd: app, env, encoding: 'utf8' },
  );
  if (install.status !== 0) throw new Error(`npm install of the tarball failed: ${install.stderr}`);
}, 120_000);

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('is under 1 MB packed, with no source maps, one server bundle and no dependencies', () => {
    expect(packed.size).toBeLessThan(1024 * 1024);
    const files = packed.files.map((f) => f.path);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files).not.toContain('mcp-server/dist/index.js');
    for (const bin of ['mcp-server/dist/loki-mcp.js', 'mcp-server/dist/loki.js', 'mcp-server/dist/server.cjs'])
      expect(files).toContain(bin);
    expect(pkg.dependencies).toBeUndefined();
    // The installed tree is the package alone.
    expect(fs.readdirSync(path.join(app, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(['loki-mode']);
  });

  it('its bundles load only Node built-ins, so nothing else needs installing', () => {
    const dist = path.join(app, 'node_modules', 'loki-mode', 'mcp-server', 'dist');
    for (const file of fs.readdirSync(dist).filter((f) => /\.(c?js)$/.test(f))) {
      const text = fs.readFileSync(path.join(dist, file), 'utf8');
      const required = [...text.matchAll(/\brequire\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1]!);
      const imported = [
        ...text.matchAll(/(?:^|[;\n}])\s*import\s*(?:[\w$*{}\s,]+?from\s*)?["']([^"']+)["']/g),
        ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
      ].map((m) => m[1]!);
      const foreign = [...required, ...imported].filter((m) => !isBuiltin(m) && !m.startsWith('.'));
      expect(foreign, file).toEqual([]);
    }
  });

  it('carries every file the README links to', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(3);
    const root = path.join(app, 'node_modules', 'loki-mode');
    for (const link of links) expect(fs.existsSync(path.join(root, link)), link).toBe(true);
  });

  it('answers `initialize` through `npx -p loki-mode loki-mcp`, offline', { timeout: 60_000 }, async () => {
    const child = spawn('npx', ['-p', 'loki-mode', 'loki-mcp'], { cwd: app, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to initialize; stderr: ${err}`)), 45_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.includes('"id":1'));
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      });
      child.on('exit', (code) => reject(new Error(`loki-mcp exited ${code}; stderr: ${err}`)));
      child.stdin.write(
        `${JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'package-test', version: '1' },
          },
        })}\n`,
      );
    });
    child.stdin.end();
    await new Promise((r) => child.once('close', r));
    expect(answer).toMatchObject({ result: { serverInfo: { name: 'loki-mode', version: pkg.version } } });
  });

  it('reads YAML and frontmatter from the installed package alone: a skill loads, config.yaml is read', async () => {
    // The bundles' YAML and frontmatter parsers are loaded on first use; from the package they must come from the
    // package itself (dist/yaml.cjs and the bundle), not from a node_modules a user does not have.
    const project = path.join(scratch, 'yaml-project');
    fs.mkdirSync(path.join(project, '.loki'), { recursive: true });
    fs.writeFileSync(path.join(project, '.loki', 'config.yaml'), 'limits:\n  maxRetries: 4\n');
    const config = spawnSync('npx', ['-p', 'loki-mode', 'loki', 'config', '--json'], {
      cwd: app,
      env: { ...env, LOKI_PROJECT_DIR: project },
      encoding: 'utf8',
    });
    expect(config.status, config.stderr).toBe(0);
    const settings = (JSON.parse(config.stdout) as { settings: { key: string; value: unknown; source: string }[] })
      .settings;
    expect(settings.find((r) => r.key === 'limits.maxRetries')).toMatchObject({
      value: 4,
      source: '.loki/config.yaml',
    });
    const client = new Client({ name: 'package-test', version: '1' });
    await client.connect(
      new StdioClientTransport({
        command: 'npx',
        args: ['-p', 'loki-mode', 'loki-mcp'],
        cwd: app,
        env: { ...(env as Record<string, string>), LOKI_PROJECT_DIR: project },
        stderr: 'pipe',
      }),
    );
    try {
      const r = (await client.callTool({ name: 'loki_skill_load', arguments: { name: 'testing' } })) as CallToolResult;
      const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      expect(r.isError, text).toBeFalsy();
      expect(text.length).toBeGreaterThan(200);
    } finally {
      await client.close();
    }
  }, 90_000);

  it('runs `npx -p loki-mode loki demo` offline', { timeout: 120_000 }, () => {
    const r = spawnSync('npx', ['-p', 'loki-mode', 'loki', 'demo'], { cwd: app, env, encoding: 'utf8' });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  });

  it('`loki-mcp --help` from the package names the right npx form', () => {
    const r = spawnSync('npx', ['-p', 'loki-mode', 'loki-mcp', '--help'], { cwd: app, env, encoding: 'utf8' });
    expect(r.stderr).toContain('npx -y -p loki-mode loki-mcp');
    expect(wrongNpx(r.stderr)).toEqual([]);
  });
});

/**
 * npx commands that name loki but not in the form npx can run: `npx [-y] -p loki-mode[@version] loki|loki-mcp`.
 * `npx -y loki-mcp` asks the registry for a package called loki-mcp, which is not ours.
 */
function wrongNpx(text: string): string[] {
  // npx, its options (-p/--package with their value), then the command it runs.
  const commands = [...text.matchAll(/\bnpx((?:\s+(?:-p|--package)[= ]\S+|\s+-[\w-]+)*)\s+([\w@./<>${}-]+)/g)].map(
    (m) => m[0].replace(/\s+/g, ' '),
  );
  return commands
    .filter((c) => /loki/.test(c))
    .filter((c) => !/^npx (?:-y )?-p loki-mode(?:@[\w.<>-]+)? loki(?:-mcp)?$/.test(c));
}

describe('the npx form', () => {
  it('is the one that works everywhere the repository names it (docs, skills, help, sources)', () => {
    const files = spawnSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .stdout.split('\0')
      .filter((f) => /\.(md|ts|mjs|cjs|js|json|toml)$/.test(f) && !f.startsWith('tests/') && f !== 'package-lock.json');
    expect(files.length).toBeGreaterThan(20);
    const wrong = files.flatMap((f) => {
      const full = path.join(REPO_ROOT, f);
      if (!fs.existsSync(full) || fs.lstatSync(full).isSymbolicLink()) return [];
      return wrongNpx(fs.readFileSync(full, 'utf8')).map((c) => `${f}: ${c}`);
    });
    expect(wrong).toEqual([]);
    // The entry loki install writes as JSON args is the same command.
    expect(wrongNpx('npx -y loki-mcp')).toEqual(['npx -y loki-mcp']);
    expect(wrongNpx('npx -y -p loki-mode@0.1.0 loki-mcp and npx -p loki-mode loki demo')).toEqual([]);
  });
});
