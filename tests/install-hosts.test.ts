/**
 * What `loki install` writes reaches the model in the real Codex and Cline CLIs: each is pointed at a loopback
 * stand-in for its model API that records the first request (and refuses it), and the request must list the
 * loki-mode skill the install put where that CLI reads skills (Codex with its description, Cline by name). Neither CLI fetches MCP prompts, so the skill is
 * how the protocol reaches the model there. Nothing leaves the machine; HOME is a scratch folder.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCodexProvider } from './e2e/hosts.mjs';
import { DIST, REPO_ROOT, tempProject, type TempProject } from './helpers.js';

const BIN = path.join(REPO_ROOT, 'node_modules', '.bin');
// The description Codex and Cline show for the skill, from SKILL.md's front matter.
const DESCRIPTION = /^description: (.{40})/m.exec(fs.readFileSync(path.join(REPO_ROOT, 'SKILL.md'), 'utf8'))![1]!;

let p: TempProject | undefined;
let api: http.Server | undefined;
afterEach(async () => {
  if (api) await new Promise((r) => api!.close(r));
  api = undefined;
  p?.cleanup();
  p = undefined;
});

/** A model API on 127.0.0.1 that keeps every request body and answers 500 (the CLI then gives up). */
async function recordingApi(): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = [];
  api = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"recorded"}}');
    });
  });
  await new Promise<void>((r) => api!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1`, bodies };
}

/**
 * Run a CLI (async: the recording API lives in this process) to its end, or until `done()` holds (then it and
 * its process group, the MCP servers it started, are stopped), or `ms` at most.
 */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, done?: () => boolean, ms = 90_000) {
  return new Promise<number | null>((resolve) => {
    const child = spawn(cmd, args, { cwd: p!.root, env, stdio: 'ignore', detached: true });
    const stop = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(stop, ms);
    const poll = done ? setInterval(() => done() && stop(), 200) : undefined;
    child.on('close', (code) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      stop();
      resolve(code);
    });
  });
}

function lokiInstall(env: NodeJS.ProcessEnv, ...args: string[]): Promise<number | null> {
  return run(process.execPath, [path.join(DIST, 'loki.js'), 'install', ...args], env);
}

describe('the skill loki install puts in place reaches the model', () => {
  it('Codex (codex exec) lists it from $CODEX_HOME/skills', { timeout: 120_000 }, async () => {
    p = tempProject({ git: true });
    const { url, bodies } = await recordingApi();
    const codexHome = path.join(p.home, '.codex');
    fs.mkdirSync(codexHome);
    fs.writeFileSync(path.join(codexHome, 'config.toml'), fakeCodexProvider(url));
    const env = { ...p.env, HOME: p.home, CODEX_HOME: codexHome, FAKE_API_KEY: 'sk-test', NO_COLOR: '1' };
    expect(await lokiInstall(env, 'codex', '--user')).toBe(0);
    await run(path.join(BIN, 'codex'), ['exec', '--skip-git-repo-check', 'hello there'], env, () => bodies.length > 0);
    expect(bodies.length).toBeGreaterThan(0);
    const first = bodies[0]!;
    expect(first).toContain(`loki-mode: ${DESCRIPTION}`);
    // Codex names the file under an alias of its skills folder (r0/...).
    expect(first).toMatch(/\(file: [^)]*loki-mode\/SKILL\.md\)/);
  });

  it('Cline (the CLI) lists it from ~/.cline/skills', { timeout: 120_000 }, async () => {
    p = tempProject({ git: true });
    const { url, bodies } = await recordingApi();
    // Local sessions: without this the CLI starts a hub daemon that outlives the test.
    const env = { ...p.env, HOME: p.home, CLINE_SESSION_BACKEND_MODE: 'local', NO_COLOR: '1' };
    expect(await lokiInstall(env, 'cline')).toBe(0);
    expect(
      await run(path.join(BIN, 'cline'), ['auth', '-p', 'openai', '-k', 'sk-test', '-m', 'm', '-b', url], env),
    ).toBe(0);
    await run(path.join(BIN, 'cline'), ['--json', 'hello there friend'], env, () => bodies.length > 0);
    expect(bodies.length).toBeGreaterThan(0);
    // Cline names its skills in its skill tool's description; the model loads one by name.
    expect(bodies[0]).toMatch(/Available skills: [^."]*\bloki-mode\b/);
  });
});
