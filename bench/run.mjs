#!/usr/bin/env node
/**
 * `npm run bench`: the figures of the product design (its "Figures" table) measured in one run, so ratios
 * against the baselines (`node -e 0`, @modelcontextprotocol/server-memory) are meaningful on a noisy machine.
 * Writes bench/RESULTS.md. Nothing here asserts: tests check behaviour, this file measures.
 *
 *   node bench/run.mjs [--quick] [--memory]
 *     --quick   fewer samples and 10k instead of 100k records
 *     --memory  only the memory section (record and search), printed to stderr with its rows of the results
 *               table; RESULTS.md is not written
 *     --first-runs=N  samples of the first-query figures (default 5, 3 with --quick)
 *   node bench/run.mjs --only checkpoints|hooks   (just that section; it is replaced in bench/RESULTS.md)
 *   node bench/run.mjs --only cold      (the cold start rows, with the MCP SDK's own floor: bench/sdk-floor.mjs)
 *   node bench/run.mjs --only package   (the npm package's size and the plugin copy; its section)
 *   node bench/run.mjs --only agent-path   (bench/agent-path.mjs: an honest run in each real host CLI; its section)
 *   node bench/run.mjs --only dashboard   (bench/dashboard.mjs: an 8-process drain with and without 20 live pages)
 *   node bench/run.mjs --only queue [--repeat N] [--drain-only]
 *       just the task queue (claim latency and the 8-process drains); the queue rows of bench/RESULTS.md are
 *       replaced. --repeat runs each drain N times and keeps the run with the median throughput (all N printed);
 *       --drain-only skips the single-process claim rows.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = path.join(ROOT, 'mcp-server/dist');
const SERVER = path.join(DIST, 'loki-mcp.js');
const QUICK = process.argv.includes('--quick');
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const MEMORY_ONLY = process.argv.includes('--memory');
const REPEAT = process.argv.includes('--repeat') ? Number(process.argv[process.argv.indexOf('--repeat') + 1]) : 1;
const DRAIN_ONLY = process.argv.includes('--drain-only');
const FIRST_RUNS = Number(process.argv.find((a) => a.startsWith('--first-runs='))?.slice(13) ?? (QUICK ? 3 : 5));
const BIG = QUICK ? 10_000 : 100_000;
const COLD_RUNS = QUICK ? 8 : 20;
const CALLS = QUICK ? 300 : 1000;
const lib = await import(path.join(DIST, 'index.js'));

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-bench-'));
const HOME = path.join(TMP, 'home');
fs.mkdirSync(HOME);
const ENV = { ...process.env, LOKI_HOME: HOME, LOKI_MAX_ITERATIONS: '1000000' };
for (const k of Object.keys(ENV))
  if (k.startsWith('LOKI_') && !['LOKI_HOME', 'LOKI_MAX_ITERATIONS'].includes(k)) delete ENV[k];

const results = [];
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: q(0.5), p95: q(0.95), p99: q(0.99) };
}
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

function record(group, what, samples, note = '') {
  const st = stats(samples);
  results.push({ group, what, ...st, note });
  log(
    `${group.padEnd(12)} ${what.padEnd(58)} median ${fmt(st.median).padStart(7)} ms  p95 ${fmt(st.p95).padStart(7)} ms ${note}`,
  );
  return st;
}

function project(name) {
  const dir = path.join(TMP, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------------------------
// Cold start: spawn -> `initialize` answered (one JSON-RPC line in, first line out).

const INIT = `${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } })}\n`;

/** Time spawn -> first response line. `graceful` ends the child by closing stdin (as hosts do) and waits. */
function coldStart(cmd, args, cwd, env = ENV, graceful = false) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    let ms;
    child.stdout.on('data', (d) => {
      out += d;
      if (ms === undefined && out.includes('\n')) {
        ms = performance.now() - t0;
        if (!out.includes('"result"')) reject(new Error(`no initialize result: ${out.slice(0, 200)}`));
        if (graceful) child.stdin.end();
        else {
          child.kill('SIGKILL');
          resolve(ms);
        }
      }
    });
    child.on('exit', () => graceful && resolve(ms));
    child.on('error', reject);
    child.stdin.write(INIT);
  });
}

/**
 * Build bench/sdk-floor.mjs as loki-mcp is built (a CommonJS bundle with the same stubs, started through the compile
 * cache) and return the arguments that start it.
 */
async function sdkFloorServer() {
  const { build } = await import('esbuild');
  const { BUILTIN_HELPERS, englishOnlyZod, rewriteBuiltins, withoutAjv } =
    await import('../scripts/bundle-options.mjs');
  const dir = path.join(TMP, 'sdk-floor');
  const bundle = path.join(dir, 'server.cjs');
  // loki-mcp's options (scripts/build.mjs): the same stubs, English-only zod, builtin imports rewritten.
  await build({
    entryPoints: [path.join(ROOT, 'bench/sdk-floor.mjs')],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    minify: true,
    outfile: bundle,
    alias: withoutAjv,
    plugins: [englishOnlyZod],
    banner: { js: BUILTIN_HELPERS },
    logLevel: 'error',
  });
  fs.writeFileSync(bundle, rewriteBuiltins('sdk-floor', fs.readFileSync(bundle, 'utf8')));
  const cache = path.join(HOME, 'cache');
  fs.mkdirSync(cache, { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    path.join(dir, 'launch.cjs'),
    `require('node:module').enableCompileCache(${JSON.stringify(cache)});\nrequire('./server.cjs');\n`,
  );
  return [path.join(dir, 'launch.cjs')];
}

function nodeFloor() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).on('exit', () => resolve(performance.now() - t0));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Checkpoints: take one and roll back (with the files) in a git repository of 1,000 files, and take one and roll
// back the state of a 2,000-task run, against `git status` and `node -e 0` measured in the same run. A checkpoint
// is a git commit of the working tree plus a copy of .loki/loki.db (VACUUM INTO); a rollback also takes the
// pre-rollback checkpoint and restores the state rows in one transaction.

const CKPT_FILES = 1000;

/** The bench's git identity, for the repositories it commits to. */
const GIT_ENV = {
  ...ENV,
  GIT_AUTHOR_NAME: 'b',
  GIT_AUTHOR_EMAIL: 'b@b',
  GIT_COMMITTER_NAME: 'b',
  GIT_COMMITTER_EMAIL: 'b@b',
};

async function checkpointBench() {
  const dir = project('checkpoints-1000');
  const sh = (...args) => {
    const r = spawnSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  const file = (i) => path.join(dir, 'src', `d${Math.floor(i / 20)}`, `f${i}.ts`);
  const body = (i, v) => `// file ${i} version ${v}\n${'export const x = 1;\n'.repeat(60)}`;
  for (let i = 0; i < CKPT_FILES; i++) {
    fs.mkdirSync(path.dirname(file(i)), { recursive: true });
    fs.writeFileSync(file(i), body(i, 0));
  }
  sh('init', '-q', '-b', 'main');
  sh('add', '-A');
  sh('commit', '-q', '-m', 'bench');
  const proj = new lib.Project({ root: dir, env: ENV, actor: 'bench' });
  const n = QUICK ? 5 : 15;
  const timeSync = (fn) => {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  };
  const gitStatus = [];
  const nodeE = [];
  for (let i = 0; i < n; i++) {
    gitStatus.push(timeSync(() => spawnSync('git', ['status', '--porcelain'], { cwd: dir, env: GIT_ENV })));
    nodeE.push(timeSync(() => spawnSync(process.execPath, ['-e', '0'])));
  }
  const touch = (count, v) => {
    for (let i = 0; i < count; i++) fs.writeFileSync(file((i * 37) % CKPT_FILES), body(i, v));
  };
  const create = (label) => {
    const t0 = performance.now();
    const out = lib.createCheckpoint(proj, { kind: 'manual', trigger: 'manual', label, reason: null });
    return { ms: performance.now() - t0, id: out.created.id };
  };
  const creates = [];
  let a;
  for (let i = 0; i < n; i++) {
    touch(10, i + 1);
    const c = create(`bench ${i}`);
    creates.push(c.ms);
    a = c.id;
  }
  touch(10, 'b');
  const b = create('ten files later').id;
  const small = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    lib.rollback(proj, i % 2 === 0 ? a : b, true);
    small.push(performance.now() - t0);
  }
  for (let i = 0; i < CKPT_FILES; i++) fs.writeFileSync(file(i), body(i, 'all'));
  const all = create('every file changed').id;
  const big = [];
  for (let i = 0; i < (QUICK ? 2 : 6); i++) {
    const t0 = performance.now();
    const r = lib.rollback(proj, i % 2 === 0 ? a : all, true);
    big.push(performance.now() - t0);
    if (r.changes.code.modified < CKPT_FILES - 10)
      throw new Error(`expected about ${CKPT_FILES} files restored, got ${r.changes.code.modified}`);
  }
  proj.close();
  const queue = await queueCheckpoints();
  const base = record('checkpoints', `\`git status\` in the ${CKPT_FILES}-file repository (baseline)`, gitStatus);
  const floor = record('checkpoints', '`node -e 0` (baseline)', nodeE);
  const row = (what, samples) => ({ what, ...record('checkpoints', what, samples) });
  const rows = [
    row(`create, ${CKPT_FILES} files (10 changed since the last)`, creates),
    row('rollback with --code, 10 files differ (includes the pre-rollback checkpoint)', small),
    row(`rollback with --code, all ${CKPT_FILES} files differ`, big),
    row(
      `create in a new process, ${QUEUE_TASKS.toLocaleString()} tasks, ${QUEUE_CHANGED} completed since the last (no git repository)`,
      queue.creates,
    ),
    row(
      `rollback of the state, ${QUEUE_TASKS.toLocaleString()} tasks, all of them differ (no git repository)`,
      queue.rollbacks,
    ),
  ];
  const line = (r) =>
    `| ${r.what} | ${fmt(r.median)} | ${fmt(r.p95)} | ${r.n} | ${(r.median / base.median).toFixed(1)}x | ${(r.median / floor.median).toFixed(1)}x |`;
  return `<!-- checkpoints:begin -->
## Checkpoints (${CKPT_FILES}-file git repository)

Measured ${new Date().toISOString().slice(0, 10)} by \`node bench/run.mjs --only checkpoints\` (also part of the full run). Baselines in the same run:
\`git status --porcelain\` ${fmt(base.median)} ms, \`node -e 0\` ${fmt(floor.median)} ms (medians).

| what | median ms | p95 ms | n | vs \`git status\` | vs \`node -e 0\` |
|---|---|---|---|---|---|
${rows.map(line).join('\n')}
<!-- checkpoints:end -->
`;
}

const QUEUE_TASKS = 2000;
const QUEUE_CHANGED = 400;

/**
 * The checkpoint of a queue being drained: 2,000 tasks, 400 of them completed since the last checkpoint, taken by
 * a new process (as an agent's server taking its first one); then state-only rollbacks between the checkpoint
 * before the drain and the one after it (every task differs; each also takes its pre-rollback checkpoint).
 */
async function queueCheckpoints() {
  const dir = await queueProject('checkpoints-queue', QUEUE_TASKS);
  const proj = new lib.Project({ root: dir, env: ENV, actor: 'bench' });
  const first = lib.createCheckpoint(proj, {
    kind: 'manual',
    trigger: 'manual',
    label: 'all tasks added',
    reason: null,
  }).created.id;
  const creates = [];
  for (let round = 0; round < (QUICK ? 2 : QUEUE_TASKS / QUEUE_CHANGED); round++) {
    for (let k = 0; k < QUEUE_CHANGED; k++) {
      const r = await lib.claimTask(proj, { agent: 'bench' });
      await lib.completeTask(proj, r.task.id, r.token, 'done', []);
    }
    const child = spawnSync(process.execPath, [path.join(ROOT, 'tests/fixtures/checkpoint-once.mjs'), dir], {
      env: ENV,
      encoding: 'utf8',
    });
    if (child.status !== 0) throw new Error(`checkpoint-once.mjs: ${child.stderr}`);
    creates.push(Number(child.stdout.trim()));
  }
  const last = lib.createCheckpoint(proj, { kind: 'manual', trigger: 'manual', label: 'all tasks done', reason: null })
    .created.id;
  const rollbacks = [];
  for (let i = 0; i < (QUICK ? 3 : 10); i++) {
    const t0 = performance.now();
    const r = lib.rollback(proj, i % 2 === 0 ? first : last, false);
    rollbacks.push(performance.now() - t0);
    if (r.changes.state.modified < QUEUE_TASKS)
      throw new Error(`expected every one of ${QUEUE_TASKS} tasks restored, got ${r.changes.state.modified}`);
  }
  proj.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { creates, rollbacks };
}

// ---------------------------------------------------------------------------------------------------------
// Task queue: claim latency at 100 / 1k / 10k tasks (one process), and 8 processes draining 2,000 tasks,
// through the queue operations the tools call (engine) and through the tools over the SDK (tools).

const CLAIMER = path.join(ROOT, 'tests/fixtures/queue-claimer.mjs');
const PRIORITY = ['critical', 'high', 'medium', 'low'];

async function queueProject(name, count) {
  const dir = project(name);
  const proj = new lib.Project({ root: dir, env: ENV, actor: 'bench' });
  const seed = await import('@modelcontextprotocol/sdk/inMemory.js');
  const { server } = lib.createServer(proj);
  const [a, b] = seed.InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 'bench-seed', version: '1' });
  await client.connect(b);
  await client.callTool({ name: 'loki_start', arguments: { specText: '# Queue bench\n' } });
  // The spec's own task (its title is its one requirement) is set aside: the drain counts only the bench's tasks.
  const seeded = (await client.callTool({ name: 'loki_task_list', arguments: {} })).structuredContent.rows;
  for (const t of seeded)
    await client.callTool({
      name: 'loki_task_update',
      arguments: { id: t.id, action: 'block', reason: 'not benched' },
    });
  for (let i = 0; i < count; i += 200) {
    const tasks = Array.from({ length: Math.min(200, count - i) }, (_, k) => ({
      id: `q${i + k}`,
      title: `task ${i + k}`,
      phase: 'BOOTSTRAP',
      priority: PRIORITY[(i + k) % 4],
    }));
    const r = await client.callTool({ name: 'loki_task_add', arguments: { tasks } });
    if (r.isError) throw new Error(r.content[0].text);
  }
  await client.close();
  proj.close();
  return dir;
}

async function claimLatencies() {
  const claimAt = {};
  for (const size of QUICK ? [100, 1000] : [100, 1000, 10_000]) {
    const dir = await queueProject(`queue-${size}`, size + CALLS + 100);
    const proj = new lib.Project({ root: dir, env: ENV, actor: 'bench' });
    await lib.claimTask(proj, { agent: 'warm' });
    claimAt[size] = record(
      'queue',
      `claim (transaction: pick + write + audit + commit), ${size.toLocaleString()} open tasks`,
      await timeCalls(() => lib.claimTask(proj, { agent: 'bench' }), CALLS),
    );
    proj.close();
  }
  return claimAt;
}

const FLOOR_CLAIMER = path.join(ROOT, 'bench/sqlite-claimer.mjs');

let drainRuns = 0;
/** `via`: 'engine' or 'tools' (loki-mode), or 'sqlite' (the bare node:sqlite floor, bench/sqlite-claimer.mjs). */
/** `around(dir)`: started before the claimers go, it returns a function that ends it (the dashboard bench). */
async function drain(via, claimers, tasks, around) {
  // A new project each time (its external audit anchor is keyed by the path).
  let dir;
  let args;
  if (via === 'sqlite') {
    dir = project(`drain-${via}-${++drainRuns}`);
    const db = path.join(dir, 'floor.db');
    spawnSync(process.execPath, [FLOOR_CLAIMER, 'seed', db, String(tasks)], { stdio: 'inherit' });
    args = (i) => [FLOOR_CLAIMER, 'drain', db, `agent-${i}`];
  } else {
    dir = await queueProject(`drain-${via}-${++drainRuns}`, tasks);
    args = (i) => ['--expose-gc', CLAIMER, dir, `agent-${i}`, 'drain', '--barrier'];
  }
  const env = { ...ENV, LOKI_VIA: via === 'engine' ? 'engine' : '' };
  const kids = Array.from({ length: claimers }, (_, i) =>
    spawn(process.execPath, args(i), { env, stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outs = kids.map((k) => {
    let out = '';
    k.stdout.on('data', (d) => (out += d));
    return {
      ready: new Promise((r) => k.stdout.on('data', () => out.includes('ready') && r())),
      done: new Promise((r) => k.on('exit', () => r(out))),
    };
  });
  await Promise.all(outs.map((o) => o.ready));
  const end = around ? await around(dir) : undefined;
  const t0 = performance.now();
  for (const k of kids) k.stdin.write('go\n');
  const texts = await Promise.all(outs.map((o) => o.done));
  const wall = performance.now() - t0;
  const extra = end ? await end() : undefined;
  const runs = texts.map((t) => JSON.parse(t.trim().split('\n').pop()));
  const claimed = runs.flatMap((r) => r.claimed);
  const latencies = runs.flatMap((r) => r.latencies);
  const st = stats(latencies);
  const run = {
    ...st,
    wall,
    extra,
    latencies,
    perSecond: claimed.length / (wall / 1000),
    double: claimed.length - new Set(claimed).size,
    lost: tasks - new Set(claimed).size,
  };
  fs.rmSync(dir, { recursive: true, force: true });
  log(
    `queue        drain ${via}: ${run.perSecond.toFixed(0)} claims/s, median ${fmt(st.median)} ms, p95 ${fmt(st.p95)} ms, p99 ${fmt(st.p99)} ms, ${run.double} double, ${run.lost} lost`,
  );
  return run;
}

/** Run a drain `REPEAT` times; record the run with the median throughput (and say so when there were several). */
async function drainRepeated(via, claimers, tasks) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await drain(via, claimers, tasks));
  const sorted = [...runs].sort((a, b) => a.perSecond - b.perSecond);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  const note =
    REPEAT > 1
      ? `(median of ${REPEAT} runs by throughput: ${runs.map((r) => `${r.perSecond.toFixed(0)}/s p99 ${fmt(r.p99)}`).join(', ')})`
      : '';
  record(
    'queue',
    `claim, ${claimers} processes draining ${tasks.toLocaleString()} tasks (${via})`,
    mid.latencies,
    note,
  );
  const worst = { double: Math.max(...runs.map((r) => r.double)), lost: Math.max(...runs.map((r) => r.lost)) };
  return { ...mid, ...worst, runs };
}

const span = (values, f) => `${f(Math.min(...values))}-${f(Math.max(...values))}`;
/** The recorded run, and with several runs the spread of all of them (the run kept is the median by throughput). */
const drainTarget = (d) =>
  `${d.double} double, ${d.lost} lost, p99 ${fmt(d.p99)} ms, ${d.perSecond.toFixed(0)}/s` +
  (d.runs.length > 1
    ? ` (median of ${d.runs.length} runs; all: p99 ${span(
        d.runs.map((r) => r.p99),
        fmt,
      )} ms, ${span(
        d.runs.map((r) => r.perSecond),
        (x) => x.toFixed(0),
      )}/s)`
    : '');
/** Targets: through the engine >= 2,000 claims/s with p99 <= 5 ms; through the tools >= 500/s with p99 <= 30 ms. */
const DRAIN_TARGETS = { engine: { p99: 5, perSecond: 2000 }, tools: { p99: 30, perSecond: 500 } };
const drainMet = (d, via) =>
  d.double === 0 && d.lost === 0 && d.p99 <= DRAIN_TARGETS[via].p99 && d.perSecond >= DRAIN_TARGETS[via].perSecond
    ? 'met'
    : 'NOT met';
const claimFlat = (claimAt) => (Object.values(claimAt).at(-1).median <= claimAt[100].median * 1.5 ? 'met' : 'NOT met');

async function queueBench() {
  const claimAt = DRAIN_ONLY ? undefined : await claimLatencies();
  const drainFloor = await drainRepeated('sqlite', 8, QUICK ? 1000 : 2000);
  const drainEngine = await drainRepeated('engine', 8, QUICK ? 1000 : 2000);
  const drainTools = await drainRepeated('tools', 8, QUICK ? 1000 : 2000);
  log(
    `queue drain: bare SQLite ${drainFloor.perSecond.toFixed(0)} claims/s, engine ${drainEngine.perSecond.toFixed(0)} claims/s, tools ${drainTools.perSecond.toFixed(0)} claims/s`,
  );
  return { claimAt, drainFloor, drainEngine, drainTools };
}

// ---------------------------------------------------------------------------------------------------------
// Hooks and the host-facing surface: each Claude Code hook against `node -e 0` (target: <= 1.5x), the
// tools/list size, and SKILL.md's cost when it fires (bytes / 4, and Claude Code's own estimate).

/** tools/list in bytes, as the last hooksBench measured it (the Targets table's row, for --only hooks). */
let hooksToolBytes;

async function hooksBench() {
  const HOOK = path.join(DIST, 'loki-hook.cjs');
  const dir = project('hooks');
  spawnSync('git', ['init', '-q'], { cwd: dir });
  const lib = await import(pathToFileURL(path.join(DIST, 'index.js')).href);
  const proj = new lib.Project({ root: dir, env: ENV, actor: 'bench' });
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
  const { server } = lib.createServer(proj);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const c = new Client({ name: 'bench', version: '1' });
  await c.connect(b);
  await c.callTool({ name: 'loki_start', arguments: { specText: '# Bench\n\n- one task\n', tier: 'simple' } });
  await c.close();
  const runs = QUICK ? 10 : 30;
  const time = (args, input) => {
    const t0 = performance.now();
    spawnSync(process.execPath, args, { cwd: dir, env: ENV, input, stdio: ['pipe', 'ignore', 'ignore'] });
    return performance.now() - t0;
  };
  const events = {
    'pre-tool-use (guard, a compound Bash command)': [
      'pre-tool-use',
      { cwd: dir, tool_name: 'Bash', tool_input: { command: 'npm test && git status' } },
    ],
    'post-tool-use (usage from the transcript)': ['post-tool-use', { cwd: dir, tool_name: 'Bash' }],
    'stop (the autonomy loop decision)': ['stop', { cwd: dir, stop_hook_active: false }],
    'session-start (the resume briefing)': ['session-start', { cwd: dir, source: 'resume' }],
  };
  time([HOOK, 'pre-tool-use'], '{}'); // writes the V8 code cache, as a host's first call does
  const floor = [];
  const samples = Object.fromEntries(Object.keys(events).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    floor.push(time(['-e', '0'], ''));
    for (const [k, [event, input]] of Object.entries(events))
      samples[k].push(time([HOOK, event], JSON.stringify(input)));
  }
  const base = record('hooks', '`node -e 0` (baseline)', floor);
  const rows = Object.entries(samples).map(([what, s]) => ({ what, ...record('hooks', `hook: ${what}`, s) }));
  const sizeClient = await stdioClient(project('hooks-size'));
  const tools = (await sizeClient.listTools()).tools;
  await sizeClient.close();
  const toolBytes = Buffer.byteLength(JSON.stringify(tools));
  hooksToolBytes = toolBytes;
  const skillBytes = fs.statSync(path.join(ROOT, 'SKILL.md')).size;
  const claudeHome = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-bench-claude-'));
  const cEnv = { ...process.env, HOME: claudeHome, CLAUDE_CONFIG_DIR: path.join(claudeHome, '.claude') };
  const claude = path.join(ROOT, 'node_modules/.bin/claude');
  spawnSync(claude, ['plugin', 'marketplace', 'add', ROOT], { env: cEnv, encoding: 'utf8' });
  spawnSync(claude, ['plugin', 'install', 'loki-mode@loki-mode'], { env: cEnv, encoding: 'utf8' });
  const details = spawnSync(claude, ['plugin', 'details', 'loki-mode'], { env: cEnv, encoding: 'utf8' }).stdout;
  fs.rmSync(claudeHome, { recursive: true, force: true });
  const onInvoke = /^\s*loki-mode\s+~?([\d.]+k?)\s+~?([\d.]+k?)\s*$/m.exec(details);
  const worst = Math.max(...rows.map((r) => r.median / base.median));
  return `<!-- hooks:begin -->
## Hooks and the host surface

Measured ${new Date().toISOString().slice(0, 10)} by \`node bench/run.mjs --only hooks\` (also part of the full run): the built
\`dist/loki-hook.cjs\` spawned the way Claude Code runs it, in a project with an active run, ${runs} times each,
interleaved with the \`node -e 0\` baseline (${fmt(base.median)} ms median).

| what | target | figure | status |
|---|---|---|---|
${rows.map((r) => `| ${r.what} | <= 1.5x \`node -e 0\` | ${fmt(r.median)} ms median, ${(r.median / base.median).toFixed(2)}x (p95 ${fmt(r.p95)} ms) | ${r.median / base.median <= 1.5 ? 'met' : 'NOT met'} |`).join('\n')}
| tools/list, ${tools.length} tools | <= 5,000 tokens | ${Math.round(toolBytes / 4)} tokens (${toolBytes} bytes / 4) | ${toolBytes / 4 <= 5000 ? 'met' : 'NOT met'} |
| SKILL.md on invoke | <= 2,500 tokens | ${Math.round(skillBytes / 4)} tokens (${skillBytes} bytes / 4); \`claude plugin details\`: ${onInvoke ? `~${onInvoke[2]} on invoke, ~${onInvoke[1]} always-on` : 'not available'} | ${skillBytes / 4 <= 2500 ? 'met' : 'NOT met'} |

The slowest hook is ${worst.toFixed(2)}x \`node -e 0\`.
<!-- hooks:end -->
`;
}

// ---------------------------------------------------------------------------------------------------------
// Verification: what a loki_verify costs on a 1,000-file repository (snapshot, clean room, the runner with its
// reporter, the diff and scans) against running the same test command directly in the project.
// Target (issue 16): <= 1.3x the direct run plus 300 ms.

const VERIFY_FILES = 1000;

async function verifyBench() {
  const dir = project('verify-1000');
  const write = (rel, text) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  // 980 source files and 20 test files of 5 tests each (node:test through npm test, as a new project has it).
  for (let i = 0; i < VERIFY_FILES - 20; i++)
    write(`src/d${Math.floor(i / 20)}/f${i}.js`, `export const v${i} = ${i};\n${'// filler line\n'.repeat(40)}`);
  for (let t = 0; t < 20; t++)
    write(
      `test/t${t}.test.js`,
      `import { test } from 'node:test';\nimport assert from 'node:assert';\nimport { v${t} } from '../src/d0/f${t}.js';\n` +
        Array.from({ length: 5 }, (_, k) => `test('case ${k}', () => assert.equal(v${t} + ${k}, ${t + k}));\n`).join(
          '',
        ),
    );
  write(
    'package.json',
    JSON.stringify({ name: 'bench', private: true, type: 'module', scripts: { test: 'node --test' } }),
  );
  for (const args of [
    ['init', '-q', '-b', 'main'],
    ['add', '-A'],
    ['commit', '-q', '-m', 'bench'],
  ])
    spawnSync('git', args, { cwd: dir, env: GIT_ENV });
  const proj = new lib.Project({ root: dir, env: ENV, actor: 'bench' });
  const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
  const { server } = lib.createServer(proj);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(b);
  await client.callTool({ name: 'loki_start', arguments: { specText: '# Bench\n\n- one task\n', tier: 'simple' } });
  write('src/d0/f0.js', 'export const v0 = 0;\n// changed\n');
  const verify = async () => {
    const t0 = performance.now();
    const r = await client.callTool({ name: 'loki_verify', arguments: {} });
    if (r.isError) throw new Error(r.content[0].text);
    const test = r.structuredContent.checks.find((c) => c.name === 'test');
    if (test.verdict !== 'pass' || test.tests.passed !== 100)
      throw new Error(`unexpected test fact: ${JSON.stringify(test)}`);
    return performance.now() - t0;
  };
  const first = await verify();
  const runs = QUICK ? 3 : 8;
  const direct = [];
  const verifies = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync('npm', ['test'], { cwd: dir, env: ENV, stdio: 'ignore' });
    if (r.status !== 0) throw new Error('npm test failed in the bench project');
    direct.push(performance.now() - t0);
    verifies.push(await verify());
  }
  await client.close();
  proj.close();
  const base = record('verify', `\`npm test\` run directly, ${VERIFY_FILES}-file repository (baseline)`, direct);
  const v = record('verify', `loki_verify (clean room + reporter + diff + scans), ${VERIFY_FILES} files`, verifies);
  const budget = base.median * 1.3 + 300;
  return `<!-- verify:begin -->
## Verification overhead (${VERIFY_FILES}-file git repository, 100 node:test tests)

Measured ${new Date().toISOString().slice(0, 10)} by \`node bench/run.mjs --only verify\` (also part of the full run), ${runs} runs
each, interleaved. The first verification of a run also runs the baseline's tests once (their ids are what later
verifications compare with): ${fmt(first)} ms.

| what | target | median ms | p95 ms | status |
|---|---|---|---|---|
| \`npm test\` directly (baseline) | - | ${fmt(base.median)} | ${fmt(base.p95)} | - |
| loki_verify | <= 1.3x baseline + 300 ms = ${fmt(budget)} ms | ${fmt(v.median)} (${(v.median / base.median).toFixed(2)}x) | ${fmt(v.p95)} | ${v.median <= budget ? 'met' : 'NOT met'} |
<!-- verify:end -->
`;
}

/** A measurement as a row of the "All measurements" table of bench/RESULTS.md. */
const measurementRow = (r) => `| ${r.group} | ${r.what} | ${fmt(r.median)} | ${fmt(r.p95)} | ${fmt(r.p99)} | ${r.n} |`;

/**
 * For a partial run (--only): rewrite rows of bench/RESULTS.md in place. `edit(lines, at)` changes the rows of its
 * own (at(prefix) is the index of the row starting with it, and throws when there is none); then each of this run's
 * measurements replaces its row of "All measurements", a row the file lacks going where `newRowAt(lines)` says (or
 * left out without it).
 */
function updateRows(what, edit, newRowAt) {
  const file = path.join(ROOT, 'bench/RESULTS.md');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const at = (prefix) => {
    const i = lines.findIndex((l) => l.startsWith(prefix));
    if (i < 0) throw new Error(`bench/RESULTS.md has no row starting with ${prefix}: run the whole bench once`);
    return i;
  };
  edit(lines, at);
  for (const r of results) {
    const i = lines.findIndex((l) => l.startsWith(`| ${r.group} | ${r.what} |`));
    if (i >= 0) lines[i] = measurementRow(r);
    else if (newRowAt) lines.splice(newRowAt(lines), 0, measurementRow(r));
  }
  fs.writeFileSync(file, lines.join('\n'));
  log(`Updated the ${what} rows of bench/RESULTS.md`);
}

/** Replace (or add, before the notes) a marked section of bench/RESULTS.md. */
function writeSection(name, section) {
  const file = path.join(ROOT, 'bench/RESULTS.md');
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const begin = old.indexOf(`<!-- ${name}:begin -->`);
  const endMark = `<!-- ${name}:end -->\n`;
  const end = old.indexOf(endMark);
  let next;
  if (begin >= 0 && end > begin) next = old.slice(0, begin) + section + old.slice(end + endMark.length);
  else {
    const at = old.indexOf('\n## Notes');
    next = at >= 0 ? `${old.slice(0, at)}\n${section}${old.slice(at)}` : `${old}\n${section}`;
  }
  fs.writeFileSync(file, next);
  log(`Updated the ${name} section of bench/RESULTS.md`);
}

if (ONLY === 'package') {
  // The npm package and the plugin copy (bench/package-size.mjs): sizes only, seconds.
  const { packageSection } = await import('./package-size.mjs');
  writeSection('package', packageSection());
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
}
if (ONLY === 'agent-path') {
  // The real host CLIs end to end (bench/agent-path.mjs): loki calls and result sizes per host.
  const { agentPathRuns, agentPathSection } = await import('./agent-path.mjs');
  writeSection('agent-path', agentPathSection(await agentPathRuns()));
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
}
if (ONLY === 'verify') {
  writeSection('verify', await verifyBench());
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
}
if (ONLY === 'hooks') {
  writeSection('hooks', await hooksBench());
  // The same measurements where the full run puts them: the hooks' rows of "All measurements" and tools/list's
  // row of the Targets table.
  updateRows('hooks', (lines) => {
    const tokens = Math.round(hooksToolBytes / 4);
    const row = lines.findIndex((l) => l.startsWith('| tools/list | <= 5,000 tokens |'));
    if (row >= 0)
      lines[row] =
        `| tools/list | <= 5,000 tokens | ${tokens} tokens (${hooksToolBytes} bytes / 4) | ${tokens <= 5000 ? 'met' : 'NOT met'} |`;
  });
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
}
if (ONLY === 'checkpoints') {
  writeSection('checkpoints', await checkpointBench());
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
} else if (ONLY === 'queue') {
  const { claimAt, drainFloor, drainEngine, drainTools } = await queueBench();
  const day = new Date().toISOString().slice(0, 10);
  updateRows(
    'queue',
    (lines, at) => {
      // The floor's row goes just above the engine's (replaced with it; added by the first run that has it).
      const floorAt = lines.findIndex((l) => l.startsWith('| concurrent claims, 8 processes, bare node:sqlite'));
      if (floorAt >= 0) lines.splice(floorAt, 1);
      lines[at('| concurrent claims, 8 processes (engine)')] =
        `| concurrent claims, 8 processes, bare node:sqlite (the floor: bench/sqlite-claimer.mjs) | reference for the two rows below | ${drainTarget(drainFloor)}, ${day}; the engine drains at ${(drainEngine.perSecond / drainFloor.perSecond).toFixed(2)}x its rate | - |\n` +
        `| concurrent claims, 8 processes (engine) | 0 double, 0 lost, p99 <= 5 ms, >= 2,000/s | ${drainTarget(drainEngine)}, ${day} | ${drainMet(drainEngine, 'engine')} |`;
      lines[at('| concurrent claims, 8 processes (through the tools)')] =
        `| concurrent claims, 8 processes (through the tools) | 0 double, 0 lost, p99 <= 30 ms, >= 500/s | ${drainTarget(drainTools)}, ${day} | ${drainMet(drainTools, 'tools')} |`;
      if (claimAt)
        lines[at('| queue claim, 100 -> ')] =
          `| queue claim, 100 -> ${Object.keys(claimAt).at(-1)} open tasks | flat | ${Object.values(claimAt)
            .map((x) => fmt(x.median))
            .join(' -> ')} ms | ${claimFlat(claimAt)} |`;
    },
    // A row this file does not have yet (a new measurement) goes before the other drains.
    (lines) => lines.findIndex((l) => l.startsWith('| queue | claim, 8 processes draining')),
  );
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
} else if (ONLY === 'dashboard') {
  const { dashboardSection } = await import('./dashboard.mjs');
  writeSection('dashboard', await dashboardSection((around) => drain('engine', 8, QUICK ? 1000 : 2000, around)));
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
} else if (ONLY !== undefined && ONLY !== 'cold') {
  throw new Error(
    `--only takes "agent-path", "checkpoints", "cold", "dashboard", "hooks", "package", "queue" or "verify", got ${ONLY}`,
  );
}

const memoryBin = path.join(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');
const emptyProject = project('empty');
const bigProject = project('big');

if (MEMORY_ONLY) {
  await coldStart(process.execPath, [SERVER], emptyProject, ENV, true); // writes the V8 code cache, as the full run does
  await memorySection();
  // Its rows as they appear in bench/RESULTS.md, which this mode does not write.
  for (const r of results) log(measurementRow(r));
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
}

/** BIG session documents in a project's database (each a real, valid record). */
function seedDocs(store, n, prefix = 's') {
  const body = (i) => ({
    id: `${prefix}-${i}`,
    runId: 'r-bench',
    pid: 1,
    host: 'bench',
    client: null,
    provider: 'bench',
    startedAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    status: 'stopped',
    stoppedAt: '2026-01-01T00:00:00.000Z',
    stopReason: 'bench',
  });
  store.tx(() => {
    for (let i = 0; i < n; i++)
      store.db.run(
        'INSERT INTO docs (key, kind, body) VALUES (?, ?, ?)',
        `session/${prefix}-${i}`,
        'session',
        JSON.stringify(body(i)),
      );
  });
}

const FLOOR_ROW = 'the MCP SDK alone (bench/sdk-floor.mjs, bundled like loki-mcp): spawn -> initialize';

/** Cold start, interleaved: loki-mcp (empty, big, uncached), `node -e 0`, server-memory and the SDK's floor. */
async function coldStartBench() {
  log(`Preparing ${BIG.toLocaleString()} records and ${BIG.toLocaleString()} audit entries in the database...`);
  {
    const store = new lib.Project({ root: bigProject, actor: 'bench', env: ENV }).openStore();
    seedDocs(store, BIG);
    store.tx(() => {
      for (let i = 0; i < BIG; i++) store.audit.append('bench.entry', `t-${i}`, { i });
    });
    store.close();
  }

  log('Cold start (interleaved)...');
  // A first run that exits the way hosts end it (stdin closed) writes the V8 code cache, as a user's first
  // session does; later starts use it. The uncached figure is measured too.
  await coldStart(process.execPath, [SERVER], emptyProject, ENV, true);
  const NO_CACHE_ENV = { ...ENV, LOKI_NO_CODE_CACHE: '1' };
  const floorArgs = await sdkFloorServer();
  await coldStart(process.execPath, floorArgs, emptyProject, ENV, true); // its compile cache, as for loki-mcp
  const cold = { node: [], loki: [], lokiBig: [], lokiNoCache: [], memory: [], floor: [] };
  for (let i = 0; i < COLD_RUNS + 2; i++) {
    const warm = i < 2; // the first rounds fill the OS file cache; not recorded
    const n = await nodeFloor();
    const l = await coldStart(process.execPath, [SERVER], emptyProject);
    const lb = await coldStart(process.execPath, [SERVER], bigProject);
    const ln = await coldStart(process.execPath, [SERVER], emptyProject, NO_CACHE_ENV);
    const m = await coldStart(process.execPath, [memoryBin], project('memory'));
    const f = await coldStart(process.execPath, floorArgs, emptyProject);
    if (!warm) {
      cold.node.push(n);
      cold.loki.push(l);
      cold.lokiBig.push(lb);
      cold.lokiNoCache.push(ln);
      cold.memory.push(m);
      cold.floor.push(f);
    }
  }
  const sNode = record('cold start', '`node -e 0` (spawn to exit)', cold.node);
  const sLoki = record('cold start', 'loki-mcp: spawn -> initialize answered, empty project', cold.loki);
  const sBig = record('cold start', `loki-mcp: same, ${BIG.toLocaleString()} records + audit entries`, cold.lokiBig);
  record('cold start', 'loki-mcp: same, without the code cache (LOKI_NO_CODE_CACHE=1)', cold.lokiNoCache);
  const sMem = record('cold start', '@modelcontextprotocol/server-memory: spawn -> initialize', cold.memory);
  const sFloor = record('cold start', FLOOR_ROW, cold.floor);
  const ratios = {
    vsNode: sLoki.median / sNode.median,
    vsMemory: sLoki.median / sMem.median,
    bigVsEmpty: sBig.median / sLoki.median,
    floorVsNode: sFloor.median / sNode.median,
    floorVsMemory: sFloor.median / sMem.median,
  };
  log(
    `ratios: loki/node ${ratios.vsNode.toFixed(2)}, loki/server-memory ${ratios.vsMemory.toFixed(2)}, big/empty ${ratios.bigVsEmpty.toFixed(2)}`,
  );
  return { sNode, sLoki, sBig, sMem, sFloor, ratios };
}

/** The cold start's rows of the Targets table (the full run and --only cold write the same). */
function coldTargetRows({ sNode, sLoki, sMem, sFloor, ratios }) {
  return [
    `| cold start vs server-memory | <= 0.4x | ${ratios.vsMemory.toFixed(2)}x (${fmt(sLoki.median)} vs ${fmt(sMem.median)} ms) | ${ratios.vsMemory <= 0.4 ? 'met' : 'NOT met'} |`,
    `| cold start vs \`node -e 0\` | <= 2x | ${ratios.vsNode.toFixed(2)}x (${fmt(sLoki.median)} vs ${fmt(sNode.median)} ms) | ${ratios.vsNode <= 2 ? 'met' : 'NOT met'} |`,
    `| cold start of the MCP SDK alone, no tools (bench/sdk-floor.mjs) | the floor of the two rows above | ${fmt(sFloor.median)} ms: ${ratios.floorVsNode.toFixed(2)}x \`node -e 0\`, ${ratios.floorVsMemory.toFixed(2)}x server-memory; loki-mcp is ${fmt(sLoki.median - sFloor.median)} ms above it | - |`,
  ];
}

if (ONLY === 'cold') {
  const c = await coldStartBench();
  updateRows(
    'cold start',
    (lines, at) => {
      const [vsMemory, vsNode, floor] = coldTargetRows(c);
      const floorAt = lines.findIndex((l) => l.startsWith('| cold start of the MCP SDK alone'));
      if (floorAt >= 0) lines.splice(floorAt, 1);
      lines[at('| cold start vs server-memory')] = vsMemory;
      lines.splice(at('| cold start vs `node -e 0`'), 1, vsNode, floor);
    },
    // A row the file does not have yet goes after the last cold start row.
    (lines) => lines.findLastIndex((l) => l.startsWith('| cold start |')) + 1,
  );
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(0);
}

const { sNode, sLoki, sMem, ratios, ...coldRest } = await coldStartBench();
// ---------------------------------------------------------------------------------------------------------
// Warm tool calls over stdio.

async function stdioClient(cwd) {
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [SERVER], cwd, env: ENV, stderr: 'ignore' }),
  );
  return client;
}

async function timeCalls(fn, n) {
  const check = (r) => {
    if (r && r.isError) throw new Error(`bench call failed: ${JSON.stringify(r.content)}`);
  };
  for (let i = 0; i < 20; i++) check(await fn());
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fn();
    samples.push(performance.now() - t0);
    check(r);
  }
  return samples;
}

log('Warm calls over stdio...');
{
  const noRun = await stdioClient(project('norun'));
  record('calls', 'MCP ping (protocol floor)', await timeCalls(() => noRun.ping(), CALLS));
  record(
    'calls',
    'no-op tool: loki_status peek, no run',
    await timeCalls(() => noRun.callTool({ name: 'loki_status', arguments: { peek: true } }), CALLS),
  );
  await noRun.close();

  const pointDir = project('point');
  const c = await stdioClient(pointDir);
  await c.callTool({ name: 'loki_start', arguments: { specText: '# Bench\n- one\n' } });
  {
    const store = new lib.Project({ root: pointDir, actor: 'bench', env: ENV }).openStore();
    seedDocs(store, 10_000, 'x');
    store.close();
  }
  record(
    'calls',
    'point read: loki_status peek, active run, 10k records',
    await timeCalls(() => c.callTool({ name: 'loki_status', arguments: { peek: true } }), CALLS),
  );
  record(
    'calls',
    'durable mutation: loki_status (turn + audit), 10k records',
    await timeCalls(() => c.callTool({ name: 'loki_status', arguments: {} }), CALLS),
  );
  await c.close();
}

// ---------------------------------------------------------------------------------------------------------
// Store primitives in process: a durable single-record mutation (one transaction: read, write, audit append,
// commit with fsync) at 100 and at BIG records in the table.

log('Store mutations at 100 and at the large size...');
async function mutationAt(count) {
  const dir = project(`mut-${count}`);
  const store = new lib.Project({ root: dir, actor: 'bench', env: ENV }).openStore();
  store.tx(() => {
    for (let i = 0; i < count; i++)
      store.db.run(
        "INSERT INTO docs (key, kind, body) VALUES (?, 'bench', ?)",
        `bench/r-${i}`,
        JSON.stringify({ id: i, value: 0 }),
      );
  });
  let i = 0;
  const samples = await timeCalls(
    () =>
      store.mutate(
        () => {
          const id = `bench/r-${i++ % count}`;
          const cur = JSON.parse(store.db.get('SELECT body FROM docs WHERE key = ?', id).body);
          store.db.run('UPDATE docs SET body = ? WHERE key = ?', JSON.stringify({ ...cur, value: cur.value + 1 }), id);
          return id;
        },
        (id) => ({ action: 'bench.update', target: id }),
      ),
    CALLS,
  );
  store.close();
  return { samples, store };
}
const m100 = record('store', 'durable single-record mutation, 100 records', (await mutationAt(100)).samples);
const mBig = record(
  'store',
  `durable single-record mutation, ${BIG.toLocaleString()} records`,
  (await mutationAt(BIG)).samples,
);

// Audit append and verify.
{
  const dir = project('audit');
  const store = new lib.Project({ root: dir, actor: 'bench', env: ENV }).openStore();
  record(
    'audit',
    'append (its own transaction + commit + external anchor)',
    await timeCalls(
      () =>
        store.mutate(
          () => 1,
          () => ({ action: 'bench.append', target: 'x', data: { n: 1 } }),
        ),
      CALLS,
    ),
  );
  store.close();
  const big = new lib.Project({ root: bigProject, actor: 'bench', env: ENV }).openStore();
  const samples = [];
  for (let i = 0; i < (QUICK ? 2 : 5); i++) {
    const t0 = performance.now();
    const r = big.audit.verify();
    samples.push(performance.now() - t0);
    if (r.count !== BIG) throw new Error(`verify counted ${r.count}`);
  }
  record('audit', `verify ${BIG.toLocaleString()} entries`, samples);
  big.close();
}

// ---------------------------------------------------------------------------------------------------------
// Memory: record cost at 100, 1k and 10k items (flat), ranked search top-10 over 10k items (warm median over
// stdio and in process, and the first query of a freshly started server: nothing is loaded before it).

/** A memory corpus with a Zipf-like vocabulary: technical words, filler words and generated names. */
function memoryCorpus(n, seed = 7) {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const common =
    'to of and in is it for on with that was not be as at by from or but when after before then so because if into out up all new can fix run use add set get make test file build error fail work change check need'.split(
      ' ',
    );
  const tech =
    'auth login token session cookie database migration schema index query cache redis queue worker retry timeout network socket http api route handler middleware fixture mock bundle esbuild typescript compile lint deploy docker kubernetes config env logging metrics exception crash memory leak performance render component state hook form validation upload image stream parse json yaml csv export import dependency version upgrade postgres mysql sqlite orm prisma jest vitest playwright webpack vite react vue svelte node npm yarn pnpm python pip django flask rust cargo goroutine channel mutex lock deadlock race thread async promise callback event listener websocket grpc graphql rest pagination cursor offset sort filter search ranking tokenizer cors csrf xss injection sanitize escape encode decode unicode locale timezone date format regex glob path symlink permission ssh tls certificate proxy dns port nginx lambda bucket iam terraform helm pod container registry pipeline workflow artifact restore snapshot rollback checkpoint branch merge rebase conflict commit diff patch review council vote phase task claim lease heartbeat'.split(
      ' ',
    );
  const made = [];
  for (let i = 0; i < 6000; i++) {
    let w = '';
    const len = 4 + Math.floor(rnd() * 7);
    while (w.length < len) w += 'bcdfghjklmnprstvwz'[Math.floor(rnd() * 18)] + 'aeiou'[Math.floor(rnd() * 5)];
    made.push(w.slice(0, len));
  }
  const vocab = [...tech, ...made];
  const zipf = () => vocab[Math.min(vocab.length - 1, Math.floor(Math.pow(rnd(), 2.2) * vocab.length))];
  const words = (k) =>
    Array.from({ length: k }, () => (rnd() < 0.3 ? common[Math.floor(rnd() * common.length)] : zipf())).join(' ');
  const types = ['bugfix', 'feature', 'test', 'refactor', 'infra'];
  const items = Array.from({ length: n }, (_, i) => ({
    layer: 'episode',
    title: words(7),
    outcome: rnd() < 0.6 ? 'success' : 'failure',
    body: words(40),
    lessons: [words(12)],
    errors: rnd() < 0.5 ? [words(8)] : [],
    files: [`src/${zipf()}/${zipf()}.ts`],
    tags: [zipf().slice(0, 20)],
    taskType: types[i % 5],
  }));
  return { items, query: () => `${zipf()} ${zipf()} ${words(1)}` };
}

/** Store `n` memory items as recordMemory would leave them, in one transaction (the audit log is not needed). */
function seedMemory(dir, n) {
  const { items } = memoryCorpus(n);
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const records = items.map((it, i) => {
    const id = `ep-${(t0 + i * 1000).toString(36).padStart(9, '0')}-${i.toString(16).padStart(8, '0')}`;
    const { layer, ...rest } = it;
    return {
      id,
      layer,
      ...rest,
      phase: null,
      provenance: { run: 'r-bench', task: `t-${i % 500}`, at: new Date(t0 + i * 1000).toISOString(), source: 'bench' },
      when: null,
      antiPattern: false,
      confidence: null,
      steps: [],
      sources: [],
      groupKey: null,
      flags: [],
    };
  });
  const proj = new lib.Project({ root: dir, actor: 'bench', env: ENV });
  const store = proj.openStore();
  store.tx(() => lib.putItems(store.db, records));
  proj.close();
}

async function memorySection() {
  log('Memory: record at 100 / 1k / 10k, search over 10k...');
  const MEM_SIZES = [100, 1000, 10_000];
  const memRecord = {};
  {
    const { items } = memoryCorpus(CALLS + 20, 99);
    for (const size of MEM_SIZES) {
      const dir = project(`mem-rec-${size}`);
      seedMemory(dir, size);
      const proj = new lib.Project({ root: dir, actor: 'bench', env: ENV });
      let i = 0;
      memRecord[size] = record(
        'memory',
        `record (transaction: item + full-text index + audit), ${size.toLocaleString()} items`,
        await timeCalls(() => lib.recordMemory(proj, items[i++ % items.length], 'bench'), CALLS),
      );
      proj.close();
    }
  }
  const memSearch = {};
  {
    const dir = project('mem-search');
    seedMemory(dir, 10_000);
    const { query } = memoryCorpus(10, 1234);
    const samples = [];
    for (let r = 0; r < FIRST_RUNS; r++) {
      const c = await stdioClient(dir);
      const t0 = performance.now();
      const res = await c.callTool({
        name: 'loki_memory_search',
        arguments: { query: 'redis timeout retry', limit: 10, scope: 'project' },
      });
      samples.push(performance.now() - t0);
      if (res.isError) throw new Error(JSON.stringify(res.content));
      await c.close();
    }
    memSearch.first = record('memory', 'search: first query of a new server, 10k items', samples);
    const c = await stdioClient(dir);
    memSearch.warm = record(
      'memory',
      'search top-10 over 10k memories, warm (over stdio)',
      await timeCalls(
        () => c.callTool({ name: 'loki_memory_search', arguments: { query: query(), limit: 10, scope: 'project' } }),
        CALLS,
      ),
    );
    await c.close();
    const proj = new lib.Project({ root: dir, actor: 'bench', env: ENV });
    lib.searchMemory(proj, { query: 'warm up', scope: 'project' });
    memSearch.inproc = record(
      'memory',
      'search top-10 over 10k memories, warm (in process)',
      await timeCalls(() => lib.searchMemory(proj, { query: query(), limit: 10, scope: 'project' }), CALLS),
    );
    proj.close();
  }
  return { memRecord, memSearch };
}
const { memRecord, memSearch } = await memorySection();

const { claimAt, drainFloor, drainEngine, drainTools } = await queueBench();
const checkpointSection = await checkpointBench();
const hooksSection = await hooksBench();
const verifySection = await verifyBench();

// ---------------------------------------------------------------------------------------------------------
// tools/list size (token budget) and the report.

const sizeClient = await stdioClient(project('size'));
const toolsJson = JSON.stringify((await sizeClient.listTools()).tools);
await sizeClient.close();
const toolTokens = Math.round(Buffer.byteLength(toolsJson) / 4);
log(`tools/list: ${Buffer.byteLength(toolsJson)} bytes, about ${toolTokens} tokens`);

const md = `# Benchmark results

Measured by \`npm run bench\`${QUICK ? ' (--quick)' : ''} on ${new Date().toISOString().slice(0, 10)}: Node ${process.versions.node},
${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}.
Times in milliseconds. Compare ratios within one run, not absolute numbers across runs: the machine is shared
and fsync cost varies with what else is writing (bench/NOTES.md).

## Targets

| figure | target | measured | |
|---|---|---|---|
${coldTargetRows({ sNode, sLoki, sMem, ratios, ...coldRest }).join('\n')}
| initialize with ${BIG.toLocaleString()} records vs empty | no slower | ${ratios.bigVsEmpty.toFixed(2)}x | ${ratios.bigVsEmpty <= 1.1 ? 'met' : 'NOT met'} |
| no-op tool call | <= 1 ms median | ${fmt(results.find((r) => r.what.startsWith('no-op')).median)} ms | ${results.find((r) => r.what.startsWith('no-op')).median <= 1 ? 'met' : 'NOT met'} |
| point read at 10k records | <= 2 ms median | ${fmt(results.find((r) => r.what.startsWith('point read')).median)} ms | ${results.find((r) => r.what.startsWith('point read')).median <= 2 ? 'met' : 'NOT met'} |
| durable mutation, 100 -> ${BIG.toLocaleString()} records | <= 3 ms median, flat | ${fmt(m100.median)} -> ${fmt(mBig.median)} ms | ${mBig.median <= 3 && mBig.median <= m100.median * 1.5 ? 'met' : 'NOT met'} |
| audit append | <= 1 ms median | ${fmt(results.find((r) => r.what.startsWith('append')).median)} ms | ${results.find((r) => r.what.startsWith('append')).median <= 1 ? 'met' : 'NOT met'} |
| audit verify ${BIG.toLocaleString()} entries | <= 1 s | ${fmt(results.find((r) => r.what.startsWith('verify')).median)} ms | ${results.find((r) => r.what.startsWith('verify')).median <= 1000 ? 'met' : 'NOT met'} |
| memory record, 100 -> 1k -> 10k items | flat | ${fmt(memRecord[100].median)} -> ${fmt(memRecord[1000].median)} -> ${fmt(memRecord[10000].median)} ms | ${memRecord[10000].median <= memRecord[100].median * 1.5 ? 'met' : 'NOT met'} |
| memory search top-10 over 10k, warm | <= 5 ms median | ${fmt(memSearch.warm.median)} ms over stdio (${fmt(memSearch.inproc.median)} ms in process) | ${memSearch.warm.median <= 5 ? 'met' : 'NOT met'} |
| memory search, first query of a new server over 10k | <= 100 ms | ${fmt(memSearch.first.median)} ms | ${memSearch.first.median <= 100 ? 'met' : 'NOT met'} |
| queue claim, 100 -> ${Object.keys(claimAt).at(-1)} open tasks | flat | ${Object.values(claimAt)
  .map((x) => fmt(x.median))
  .join(' -> ')} ms | ${claimFlat(claimAt)} |
| concurrent claims, 8 processes, bare node:sqlite (the floor: bench/sqlite-claimer.mjs) | reference for the two rows below | ${drainTarget(drainFloor)}; the engine drains at ${(drainEngine.perSecond / drainFloor.perSecond).toFixed(2)}x its rate | - |
| concurrent claims, 8 processes (engine) | 0 double, 0 lost, p99 <= 5 ms, >= 2,000/s | ${drainTarget(drainEngine)} | ${drainMet(drainEngine, 'engine')} |
| concurrent claims, 8 processes (through the tools) | 0 double, 0 lost, p99 <= 30 ms, >= 500/s | ${drainTarget(drainTools)} | ${drainMet(drainTools, 'tools')} |
| tools/list | <= 5,000 tokens | ${toolTokens} tokens (${Buffer.byteLength(toolsJson)} bytes / 4) | ${toolTokens <= 5000 ? 'met' : 'NOT met'} |

## All measurements

| group | what | median | p95 | p99 | n |
|---|---|---|---|---|---|
${results.map(measurementRow).join('\n')}
`;
const notesFile = path.join(ROOT, 'bench/NOTES.md');
const { packageSection } = await import('./package-size.mjs');
// The agent-path section needs the three host CLIs and takes minutes: kept as last measured (--only agent-path).
const previous = fs.existsSync(path.join(ROOT, 'bench/RESULTS.md'))
  ? fs.readFileSync(path.join(ROOT, 'bench/RESULTS.md'), 'utf8')
  : '';
const agentPath = /<!-- agent-path:begin -->[\s\S]*?<!-- agent-path:end -->\n/.exec(previous)?.[0];
const mdWithCheckpoints = `${md}\n${checkpointSection}\n${hooksSection}\n${verifySection}\n${packageSection()}${agentPath ? `\n${agentPath}` : ''}`;
const notes = fs.existsSync(notesFile) ? `\n${fs.readFileSync(notesFile, 'utf8')}` : '';
fs.writeFileSync(path.join(ROOT, 'bench/RESULTS.md'), mdWithCheckpoints + notes);
fs.rmSync(TMP, { recursive: true, force: true });
log('Wrote bench/RESULTS.md');
process.exit(0);
