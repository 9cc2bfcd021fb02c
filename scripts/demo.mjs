#!/usr/bin/env node
/**
 * `npm run demo`: an offline Loki run against the real built server over stdio, in a throwaway git repository
 * with a real test suite. No model is involved: the script plays the agent's part (including a bug, a refused
 * completion and the fix) and the council's. It exits non-zero if any step does not behave as shown, so it
 * doubles as an end-to-end check.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const DIST = fileURLToPath(new URL('../mcp-server/dist/', import.meta.url));
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-demo-'));
const project = path.join(base, 'todo-app');
const env = { ...process.env, LOKI_HOME: path.join(base, 'home'), LOKI_LOG_LEVEL: 'error' };
for (const k of Object.keys(env))
  if (k.startsWith('LOKI_') && !['LOKI_HOME', 'LOKI_LOG_LEVEL'].includes(k)) delete env[k];
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
const git = (...args) => sh('git', ['-c', 'user.name=demo', '-c', 'user.email=demo@example.com', ...args]);
const loki = (...args) => sh(process.execPath, [path.join(DIST, 'loki.js'), ...args]);

const SPEC = `# Todo list

A small todo-list module.

## Features
- add an item
  - src/todo.js exists
  - add returns the new item, not done yet
- list items
  - list returns every item in the order added
- mark an item done
  - done marks the item with that id as done
  - all tests pass
`;
// The project's own tests, written before the run (the agent must make them pass, not change them).
const TESTS = `const test = require('node:test');
const assert = require('node:assert');
const todo = require('../src/todo.js');
test('add returns a new item, not done', () => assert.deepStrictEqual(todo.add('milk'), { id: 1, title: 'milk', done: false }));
test('list keeps the order', () => { todo.add('eggs'); assert.deepStrictEqual(todo.list().map((i) => i.title), ['milk', 'eggs']); });
test('done marks the item', () => { todo.done(2); assert.strictEqual(todo.list()[1].done, true); });
`;
const BUGGY = `const items = [];
exports.add = (title) => { const item = { id: items.length + 1, title, done: false }; items.push(item); return item; };
exports.list = () => items.slice();
exports.done = (id) => { const item = items.find((i) => i.id === id); if (item) item.done = false; };
`;
fs.mkdirSync(path.join(project, 'docs'), { recursive: true });
fs.mkdirSync(path.join(project, 'test'), { recursive: true });
fs.writeFileSync(path.join(project, 'docs/prd.md'), SPEC);
fs.writeFileSync(path.join(project, 'test/todo.test.js'), TESTS);
fs.writeFileSync(
  path.join(project, 'package.json'),
  `${JSON.stringify({ name: 'todo', private: true, scripts: { test: 'node --test' } }, null, 2)}\n`,
);
git('init', '-q', '-b', 'main');
git('add', '-A');
git('commit', '-q', '-m', 'spec');

/**
 * The SDK client checks a tool's structured result against the tool's output schema with Ajv. loki's tools declare
 * none, so it never runs, and `loki demo` ships without Ajv (scripts/build.mjs): a tool that declared one would be
 * answered with this validator's refusal, loudly, not waved through.
 */
const CLIENT_OPTIONS = {
  jsonSchemaValidator: {
    getValidator: () => () => ({
      valid: false,
      data: undefined,
      errorMessage: 'the demo client validates no output schema: loki tools declare none',
    }),
  },
};

step('Start the server the way a host does (stdio) and list its tools');
const client = new Client({ name: 'demo-agent', version: '1.0.0' }, CLIENT_OPTIONS);
await client.connect(
  new StdioClientTransport({
    command: process.execPath,
    args: [path.join(DIST, 'loki-mcp.js')],
    cwd: project,
    env,
    stderr: 'ignore',
  }),
);
const { tools } = await client.listTools();
show(tools.map((t) => `${t.name}: ${t.title}`).join('\n'));
const call = async (name, args = {}) => {
  const r = await client.callTool({ name, arguments: args });
  show(r.content[0].text);
  return r;
};

step('loki_start with the spec: session, git baseline, tier and phase list');
const started = await call('loki_start', { spec: 'docs/prd.md', tier: 'simple' });
expectThat(
  !started.isError &&
    started.structuredContent.run.tier === 'simple' &&
    started.structuredContent.phaseNow === 'DEVELOPMENT',
  'a simple-tier run; BOOTSTRAP had nothing to do (the spec tasks belong to DEVELOPMENT) and passed by itself',
);

step('loki_status, as the agent does at the start of every turn');
await call('loki_status');

step('Bad arguments are refused with the field named, and nothing changes');
const bad = await call('loki_start', { spec: '../../etc/passwd' });
expectThat(bad.isError === true, 'a path outside the project is refused');

step('Try to leave DEVELOPMENT before building anything');
const refused = await call('loki_phase_advance');
expectThat(refused.structuredContent.ok === false, 'refused: nothing changed since the baseline');

step('The "agent" works the queue: claim, write code, complete (and claim the next in the same call)');
fs.mkdirSync(path.join(project, 'src'));
let claim = (await call('loki_task_claim')).structuredContent;
let done = 0;
while (claim.task) {
  // The first task writes the module (with a bug the tests will catch); the others build on it.
  if (done === 0) fs.writeFileSync(path.join(project, 'src/todo.js'), BUGGY);
  const r = await call('loki_task_complete', {
    id: claim.task.id,
    token: claim.token,
    summary: `implemented in src/todo.js`,
    evidence: ['src/todo.js'],
    claimNext: true,
  });
  done++;
  claim = r.structuredContent.claimed;
}
expectThat(done === 3, 'every spec task claimed and completed');
const phase = (await client.callTool({ name: 'loki_status', arguments: { peek: true } })).structuredContent.run.phase;
expectThat(phase === 'QA', 'DEVELOPMENT passed to QA by itself once code changed and its tasks were done');

step('The agent says it is done. The server runs the tests itself: loki_verify');
const red = await call('loki_verify');
expectThat(
  red.structuredContent.blocking.items.some((b) => /Tests failed/.test(b)),
  'the server found a failing test the agent did not mention',
);

step('loki_complete is refused, with every reason');
const refusedDone = await call('loki_complete');
expectThat(
  refusedDone.structuredContent.status === 'CONTINUE',
  'completion refused: red tests, no council, unmet checklist items',
);

step('The agent fixes the bug, verifies again, and marks the checklist items it can vouch for');
fs.writeFileSync(path.join(project, 'src/todo.js'), BUGGY.replace('item.done = false', 'item.done = true'));
const green = await call('loki_verify');
expectThat(
  green.structuredContent.blocking.items.length === 0,
  'tests green, a real diff, nothing deleted, skipped or secret',
);
const visible = (await client.callTool({ name: 'loki_checklist_get', arguments: {} })).structuredContent.items;
// Held-out items (visible since the first completion claim) are the council's to judge, not the builder's.
const manual = visible.filter((i) => !i.check && !i.heldOut && i.status === 'open');
await call('loki_checklist_set', {
  items: manual.map((i) => ({
    id: i.id,
    status: 'met',
    evidence: 'covered by test/todo.test.js, green in the last loki_verify',
  })),
});

step('The completion council: one brief at a time, each vote hands out the next (held-out items revealed now)');
const council = (await client.callTool({ name: 'loki_council_convene', arguments: {} })).structuredContent;
show(
  `council ${council.council}: ${council.size} members, ${council.threshold} approvals needed; held-out items to judge: ${council.heldOutToJudge.join(', ') || 'none'}`,
);
const evidence = [`${council.verification}:tests 3 passed`, `${council.verification}:diff`];
const judged = council.heldOutToJudge.map((id) => ({ id, met: true, note: 'covered by the green tests' }));
let vote;
// Each member reads only its own brief: convening hands out the first, every vote's answer the next.
for (let brief = council.brief; brief; brief = vote.structuredContent.nextBrief) {
  vote = await call('loki_council_vote', {
    council: council.council,
    seat: brief.seat,
    vote: 'approve',
    rationale: `${brief.role}: the tests the project had before the run now pass and cover the spec`,
    evidence,
    items: judged,
  });
}
if (vote.structuredContent.outcome === 'devils-advocate') {
  vote = await call('loki_council_vote', {
    council: council.council,
    seat: 0,
    vote: 'approve',
    rationale: 'looked for an unmet requirement and a test that cannot fail; found none',
    evidence,
  });
}
expectThat(
  vote.structuredContent.outcome === 'approved',
  "the council approved (a unanimous vote survived the devil's advocate)",
);

step('loki_complete again: accepted, with an evidence receipt');
const accepted = await call('loki_complete');
expectThat(
  accepted.structuredContent.status === 'COMPLETE' && accepted.structuredContent.headline === 'VERIFIED',
  'COMPLETE, headlined VERIFIED',
);
await client.close();

step('Anyone can re-check the receipt later: loki proof verify');
const proof = loki('proof', 'verify');
show(proof.stdout.trim());
expectThat(proof.status === 0, 'the receipt re-hashes and its diff re-derives from the baseline');

step('A person checks on the run: loki status');
show(loki('status').stdout.trim());

step('loki pause, as a person would; the agent sees it at its next turn');
show(loki('pause').stdout.trim());
const again = new Client({ name: 'demo-agent', version: '1.0.0' }, CLIENT_OPTIONS);
await again.connect(
  new StdioClientTransport({
    command: process.execPath,
    args: [path.join(DIST, 'loki-mcp.js')],
    cwd: project,
    env,
    stderr: 'ignore',
  }),
);
const paused = await again.callTool({ name: 'loki_status', arguments: {} });
show(paused.content[0].text);
expectThat(paused.structuredContent.signals.pause === true, 'the briefing says PAUSED');
await again.close();
show(loki('resume').stdout.trim());

step('Every change is in a hash-chained audit log: loki audit verify');
const ok = loki('audit', 'verify');
show(ok.stdout.trim());
expectThat(ok.status === 0, 'the chain verifies');

step('Someone edits the log in the database by hand');
{
  const db = new DatabaseSync(path.join(project, '.loki/loki.db'));
  db.prepare(
    "UPDATE audit SET action = 'phase.skipped' WHERE seq = (SELECT min(seq) FROM audit WHERE action = 'phase.advance')",
  ).run();
  db.close();
}
const broken = loki('audit', 'verify');
show(broken.stdout.trim());
expectThat(broken.status === 1, 'the edit is detected and the first bad entry named');

step('loki doctor');
const doctor = loki('doctor');
show(doctor.stdout.trim());

fs.rmSync(base, { recursive: true, force: true });
say(
  failures === 0
    ? '\nDemo finished: every step behaved as shown.'
    : `\nDemo finished with ${failures} unexpected result(s).`,
);
process.exit(failures === 0 ? 0 : 1);
