#!/usr/bin/env node
/**
 * `npm run demo`: an offline walk through what exists so far, against the real built server over stdio, in a
 * throwaway git repository. No model is involved: the script plays the agent's part. It exits non-zero if any
 * step does not behave as shown, so it doubles as an end-to-end check.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const DIST = fileURLToPath(new URL('../mcp-server/dist/', import.meta.url));
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-demo-'));
const project = path.join(base, 'todo-app');
const env = { ...process.env, LOKI_HOME: path.join(base, 'home'), LOKI_LOG_LEVEL: 'error' };
for (const k of Object.keys(env)) if (k.startsWith('LOKI_') && !['LOKI_HOME', 'LOKI_LOG_LEVEL'].includes(k)) delete env[k];
let failures = 0;

const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (title) => say(`\n== ${title}`);
const show = (text) => say(text.replace(/^/gm, '   '));
function expectThat(ok, what) {
  say(`   ${ok ? 'ok' : 'UNEXPECTED'}: ${what}`);
  if (!ok) failures++;
}
function sh(cmd, args, cwd = project) {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
}
const git = (...args) =>
  sh('git', ['-c', 'user.name=demo', '-c', 'user.email=demo@example.com', ...args]);
const loki = (...args) => sh(process.execPath, [path.join(DIST, 'loki.js'), ...args]);

fs.mkdirSync(path.join(project, 'docs'), { recursive: true });
fs.writeFileSync(
  path.join(project, 'docs/prd.md'),
  '# Todo CLI\n\nA command-line todo list.\n\n## Features\n- add an item\n- list items\n- mark an item done\n',
);
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-q', '-m', 'spec');

step('Start the server the way a host does (stdio) and list its tools');
const client = new Client({ name: 'demo-agent', version: '1.0.0' });
await client.connect(new StdioClientTransport({ command: process.execPath, args: [path.join(DIST, 'loki-mcp.js')], cwd: project, env, stderr: 'ignore' }));
const { tools } = await client.listTools();
show(tools.map((t) => `${t.name}: ${t.title}`).join('\n'));
const call = async (name, args = {}) => {
  const r = await client.callTool({ name, arguments: args });
  show(r.content[0].text);
  return r;
};

step('loki_start with the spec: session, git baseline, tier and phase list');
const started = await call('loki_start', { spec: 'docs/prd.md' });
expectThat(!started.isError && started.structuredContent.run.tier === 'simple', 'a simple-tier run in BOOTSTRAP');

step('loki_status, as the agent does at the start of every turn');
await call('loki_status');

step('Bad arguments are refused with the field named, and nothing changes');
const bad = await call('loki_start', { spec: '../../etc/passwd' });
expectThat(bad.isError === true, 'a path outside the project is refused');

step('Advance BOOTSTRAP -> DEVELOPMENT');
await call('loki_phase_advance');

step('Try to leave DEVELOPMENT before building anything');
const refused = await call('loki_phase_advance');
expectThat(refused.structuredContent.ok === false, 'refused: nothing changed since the baseline');

step('The "agent" works the queue: claim, write code, complete (and claim the next in the same call)');
fs.mkdirSync(path.join(project, 'src'));
let claim = (await call('loki_task_claim')).structuredContent;
let done = 0;
while (claim.task) {
  const file = `src/${claim.task.id}.js`;
  fs.writeFileSync(path.join(project, file), `// ${claim.task.title}\nexport const ${claim.task.id} = true;\n`);
  const r = await call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: `wrote ${file}`, evidence: [file], claimNext: true });
  done++;
  claim = r.structuredContent.next;
}
expectThat(done === 3, 'every spec task claimed and completed');
const advanced = await call('loki_phase_advance');
expectThat(advanced.structuredContent.ok === true, 'DEVELOPMENT -> QA once code changed and the phase tasks are done');
await client.close();

step('A person checks on the run: loki status');
show(loki('status').stdout.trim());

step('loki pause, as a person would; the agent sees it at its next turn');
show(loki('pause').stdout.trim());
const again = new Client({ name: 'demo-agent', version: '1.0.0' });
await again.connect(new StdioClientTransport({ command: process.execPath, args: [path.join(DIST, 'loki-mcp.js')], cwd: project, env, stderr: 'ignore' }));
const paused = await again.callTool({ name: 'loki_status', arguments: {} });
show(paused.content[0].text);
expectThat(paused.structuredContent.signals.pause === true, 'the briefing says PAUSED');
await again.close();
show(loki('resume').stdout.trim());

step('Every change is in a hash-chained audit log: loki audit verify');
const ok = loki('audit', 'verify');
show(ok.stdout.trim());
expectThat(ok.status === 0, 'the chain verifies');

step('Someone edits the log by hand');
const logFile = path.join(project, '.loki/audit/log.jsonl');
fs.writeFileSync(logFile, fs.readFileSync(logFile, 'utf8').replace('"phase.advance"', '"phase.skipped"'));
const broken = loki('audit', 'verify');
show(broken.stdout.trim());
expectThat(broken.status === 1, 'the edit is detected and the first bad entry named');

step('loki doctor');
const doctor = loki('doctor');
show(doctor.stdout.trim());

fs.rmSync(base, { recursive: true, force: true });
say(failures === 0 ? '\nDemo finished: every step behaved as shown.' : `\nDemo finished with ${failures} unexpected result(s).`);
process.exit(failures === 0 ? 0 : 1);
