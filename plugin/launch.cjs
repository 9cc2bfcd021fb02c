#!/usr/bin/env node
// The plugin's one entry: `launch.cjs mcp` starts the loki MCP server, `launch.cjs <event>` runs a hook.
//
// The plugin carries no built code: a clone of the repository has none (dist/ is built, not committed), and the
// copy Claude Code keeps of the plugin stays small. The code is the published package of the plugin's own
// version, installed once with npm into the plugin's data folder ($CLAUDE_PLUGIN_DATA, kept across plugin
// updates) and then loaded in this process: a hook runs on every tool call, so it cannot go through npx (about
// 0.7 s a start even when cached). A built checkout next to the plugin (`claude --plugin-dir <checkout>/plugin`)
// runs its own dist instead. LOKI_PLUGIN_PACKAGE replaces what npm installs (a tarball: the offline tests).
//
// CommonJS and Node built-ins only: this file runs before anything is installed.
'use strict';
/* global require, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS on purpose (see above) */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { pathToFileURL } = require('node:url');

const VERSION = JSON.parse(fs.readFileSync(path.join(__dirname, '.claude-plugin', 'plugin.json'), 'utf8')).version;
const mode = process.argv[2];

/** The dist/ of a built loki-mode checkout this plugin folder sits in, if it is one. */
function checkoutDist() {
  const root = path.dirname(__dirname);
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    const dist = path.join(root, 'mcp-server', 'dist');
    if (pkg.name === 'loki-mode' && complete(dist)) return dist;
  } catch {
    /* not a checkout */
  }
  return undefined;
}

function complete(dist) {
  return [
    'loki-mcp.js',
    'server.cjs',
    'loki-hook.cjs',
    'hook.cjs',
    'hook-guard.cjs',
    'hook-usage.cjs',
    'yaml.cjs',
  ].every((f) => fs.existsSync(path.join(dist, f)));
}

function dataDir() {
  return (
    process.env.CLAUDE_PLUGIN_DATA || path.join(process.env.LOKI_HOME || path.join(os.homedir(), '.loki'), 'plugin')
  );
}

/** <data>/<version>/node_modules/loki-mode/mcp-server/dist, when installed whole. */
function installedDist(data) {
  const dist = path.join(data, VERSION, 'node_modules', 'loki-mode', 'mcp-server', 'dist');
  return complete(dist) ? dist : undefined;
}

/**
 * npm install into a fresh folder, then one rename into place: the server and the SessionStart hook start together
 * and may both install; the first rename wins and the other uses it. Nothing of npm's reaches stdout, which is the
 * MCP protocol or the hook's answer.
 */
function install(data) {
  const spec = process.env.LOKI_PLUGIN_PACKAGE || `loki-mode@${VERSION}`;
  fs.mkdirSync(data, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(data, `.install-${VERSION}-`));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const args = ['install', '--prefix', tmp, '--no-save', '--no-package-lock', '--no-audit', '--no-fund'];
  const r = spawnSync(npm, [...args, '--ignore-scripts', '--loglevel=error', spec], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    timeout: 110_000,
    shell: process.platform === 'win32',
  });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-3).join(' ');
    throw new Error(`could not install ${spec} with npm (${why || `exit ${r.status}`})`);
  }
  try {
    fs.renameSync(tmp, path.join(data, VERSION));
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!installedDist(data)) throw err;
  }
  const dist = installedDist(data);
  if (!dist) throw new Error(`${spec} installed, but without the loki-mode server files`);
  return dist;
}

/** Without the code: the server says why; a hook lets the action through, except the guard in a Loki project. */
function unavailable(err) {
  const reason = `loki-mode ${VERSION}: ${err.message}. The plugin runs the loki-mode package; check that npm can reach its registry, then start a new session.`;
  process.stderr.write(`${reason}\n`);
  const project = process.env.CLAUDE_PROJECT_DIR || process.cwd();
  if (mode === 'pre-tool-use' && fs.existsSync(path.join(project, '.loki'))) {
    const hookSpecificOutput = {
      hookEventName: 'PreToolUse',
      permissionDecision: 'deny',
      permissionDecisionReason: reason,
    };
    process.stdout.write(`${JSON.stringify({ hookSpecificOutput })}\n`);
    process.exit(0);
  }
  process.exit(mode === 'mcp' ? 1 : 0);
}

let dist;
try {
  dist = checkoutDist() || installedDist(dataDir()) || install(dataDir());
} catch (err) {
  unavailable(err);
}
if (mode === 'mcp') {
  process.argv.splice(2, 1);
  import(pathToFileURL(path.join(dist, 'loki-mcp.js')).href).catch(unavailable);
} else {
  // loki-hook.cjs reads the event from process.argv[2], where it already is.
  require(path.join(dist, 'loki-hook.cjs'));
}
