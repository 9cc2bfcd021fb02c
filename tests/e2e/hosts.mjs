/**
 * Drivers for the real host CLIs, each installed the way a user would have it, pointed at the fake model API
 * (fake-api.mjs) with the scripted model (model.mjs), on a fresh project (a git repository with prd.md). Each run
 * starts its own fake API and scratch home, waits for the CLI, and kills every process it started.
 *
 *   const run = await honestRun('claude', { prematureStop: true, probeGuard: true });
 *   run.report  // calls, loki results as shown, defects, the receipt, ...
 *   run.cleanup();
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { startFakeApi } from './fake-api.mjs';
import { PRD, createModel, extractNext, isRefused, lokiExchanges, lokiName, parseNext, strings } from './model.mjs';

export const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const BIN = path.join(REPO, 'node_modules', '.bin');
/** Where the hosts' CLIs are: first on PATH, a host is found there as a user's own would be. */
export const HOST_BINS_DIR = BIN;
export const HOST_BINS = {
  claude: path.join(BIN, 'claude'),
  codex: path.join(BIN, 'codex'),
  cline: path.join(BIN, 'cline'),
};
const PROMPT = 'Loki Mode: build the product specified in prd.md, following the loki tools.';

/** Why a host's binary cannot run here (undefined when it can). */
export function cannotRun(host) {
  const bin = HOST_BINS[host];
  if (!fs.existsSync(bin)) return `${bin} is not installed`;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-e2e-version-'));
  try {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: home } });
    if (r.status !== 0)
      return `${host} --version failed on ${process.platform}-${process.arch}: ${(r.stderr || r.error?.message || '').slice(0, 300)}`;
    return undefined;
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

function git(cwd, ...args) {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A fresh git repository with the 4-requirement prd.md and `npm test` = `node --test`, plus a scratch home. */
/**
 * The user's own Codex configuration for the offline runs: a model provider on the fake API (no retries, so a
 * failure shows at once). `loki install codex` merges its server into this file.
 */
export function fakeCodexProvider(baseUrl) {
  return [
    'model = "gpt-5.1-codex"',
    'model_provider = "fake"',
    '',
    '[model_providers.fake]',
    'name = "fake"',
    `base_url = "${baseUrl}"`,
    'wire_api = "responses"',
    'env_key = "FAKE_API_KEY"',
    'request_max_retries = 0',
    'stream_max_retries = 0',
    '',
  ].join('\n');
}

export function makeProject() {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-e2e-')));
  const root = path.join(base, 'calc');
  const home = path.join(base, 'home');
  fs.mkdirSync(root);
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(root, 'prd.md'), PRD);
  fs.writeFileSync(
    path.join(root, 'package.json'),
    `${JSON.stringify({ name: 'calc', version: '0.1.0', private: true, scripts: { test: 'node --test' } }, null, 2)}\n`,
  );
  fs.writeFileSync(path.join(root, '.gitignore'), 'node_modules\n');
  git(root, 'init', '-q', '-b', 'main');
  git(root, 'add', '-A');
  git(root, 'commit', '-q', '-m', 'calc: the spec');
  return { base, root, home, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}

/** The environment for a host: no LOKI_* or project variables from the caller, HOME the scratch home. */
function hostEnv(p, api, extra) {
  const env = { NPM_CONFIG_UPDATE_NOTIFIER: 'false', NO_UPDATE_NOTIFIER: '1' };
  for (const [k, v] of Object.entries(process.env))
    if (
      !k.startsWith('LOKI_') &&
      !k.startsWith('CLAUDE') &&
      !k.startsWith('ANTHROPIC') &&
      !k.startsWith('OPENAI') &&
      !k.startsWith('CODEX') &&
      !k.startsWith('CLINE') &&
      k !== 'VITEST' &&
      !k.startsWith('VITEST_')
    )
      env[k] = v;
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  // The fake API is also the proxy: whatever a host tries to send off the machine is recorded and refused.
  const proxy = {
    HTTPS_PROXY: api.url,
    HTTP_PROXY: api.url,
    https_proxy: api.url,
    http_proxy: api.url,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
  return { ...env, ...proxy, HOME: p.home, LOKI_HOME: path.join(p.home, '.loki'), ...extra };
}

/** Run a command to its end (or the deadline), killing its whole process group afterwards. */
function runProcess(cmd, args, { cwd, env, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Anything the host left behind in its group (MCP servers, shells) goes too.
      killGroup(child.pid, 'SIGKILL');
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

// ------------------------------------------------------------------------------------------------------------
// The hosts

/** The plugin's folder, as the marketplace (.claude-plugin/marketplace.json) names it for `/plugin install`. */
export function pluginDir() {
  const market = JSON.parse(fs.readFileSync(path.join(REPO, '.claude-plugin', 'marketplace.json'), 'utf8'));
  const entry = market.plugins.find((x) => x.name === 'loki-mode') ?? market.plugins[0];
  return path.resolve(REPO, typeof entry.source === 'string' ? entry.source : '.');
}

/** Claude Code's tools in the offline runs (root cannot skip permissions). */
export const CLAUDE_ALLOWED_TOOLS = 'mcp__plugin_loki-mode_loki,Write,Edit,Read,Bash,ToolSearch';

/**
 * A host set up to run offline against the fake API `api` in project `p`, as a user would have it installed: its
 * environment and the arguments it needs besides its own command line and the prompt. The drivers below use it,
 * and so can a test that starts the host some other way (`loki run -- <args>`).
 */
export async function offlineHost(host, p, api) {
  switch (host) {
    case 'claude':
      return {
        env: hostEnv(p, api, {
          ANTHROPIC_BASE_URL: api.url,
          ANTHROPIC_API_KEY: 'sk-ant-e2e-dummy',
          DISABLE_AUTOUPDATER: '1',
          DISABLE_TELEMETRY: '1',
          DISABLE_ERROR_REPORTING: '1',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        }),
        args: [
          '--plugin-dir',
          pluginDir(),
          '--debug-file',
          path.join(p.home, 'claude-debug.log'),
          '--allowedTools',
          CLAUDE_ALLOWED_TOOLS,
        ],
      };
    case 'codex': {
      const codexHome = path.join(p.home, '.codex');
      fs.mkdirSync(codexHome, { recursive: true });
      const env = hostEnv(p, api, { CODEX_HOME: codexHome, FAKE_API_KEY: 'sk-e2e-dummy', NO_COLOR: '1' });
      // The user's own configuration: the (fake) model provider; `loki install codex --user` merges the server in.
      fs.writeFileSync(path.join(codexHome, 'config.toml'), fakeCodexProvider(`${api.url}/v1`));
      // --user: this checkout's own server (the project file gets the portable `npx -y -p loki-mode@<version>`
      // entry, which needs the published package and the network).
      p.installOutput = lokiInstall(p, 'codex', env, '--user');
      return { env, args: ['--sandbox', codexSandboxMode()] };
    }
    case 'cline': {
      // Local sessions: without it Cline starts a hub daemon that outlives the run.
      const env = hostEnv(p, api, { CLINE_SESSION_BACKEND_MODE: 'local', NO_COLOR: '1' });
      const auth = await runProcess(
        HOST_BINS.cline,
        ['auth', '-p', 'openai', '-k', 'sk-e2e-dummy', '-m', 'gpt-4.1', '-b', `${api.url}/v1`],
        { cwd: p.root, env, timeoutMs: 60_000 },
      );
      if (auth.code !== 0) throw new Error(`cline auth failed: ${auth.stderr}${auth.stdout}`);
      p.installOutput = lokiInstall(p, 'cline', env);
      return { env, args: [] };
    }
    default:
      throw new Error(`no host ${host}`);
  }
}

async function driveClaude(p, api, timeoutMs) {
  const h = await offlineHost('claude', p, api);
  return runProcess(HOST_BINS.claude, ['-p', PROMPT, ...h.args], { cwd: p.root, env: h.env, timeoutMs });
}

/** `loki install <host>` as a user runs it, in the project, with the scratch home. */
function lokiInstall(p, host, env, ...extra) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'mcp-server', 'dist', 'loki.js'), 'install', host, ...extra], {
    cwd: p.root,
    env,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`loki install ${host} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function driveCodex(p, api, timeoutMs) {
  const h = await offlineHost('codex', p, api);
  return runProcess(HOST_BINS.codex, ['exec', ...h.args, '--skip-git-repo-check', '-C', p.root, PROMPT], {
    cwd: p.root,
    env: h.env,
    timeoutMs,
  });
}

/**
 * The Codex sandbox for the run: workspace-write (as `--full-auto` users have it) when Codex's Linux sandbox works
 * on this machine (a container may lack the namespaces bubblewrap needs), else danger-full-access.
 * LOKI_E2E_CODEX_SANDBOX overrides.
 */
let codexSandbox;
function codexSandboxMode() {
  if (process.env.LOKI_E2E_CODEX_SANDBOX) return process.env.LOKI_E2E_CODEX_SANDBOX;
  if (codexSandbox) return codexSandbox;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-e2e-sandbox-'));
  try {
    const r = spawnSync(
      HOST_BINS.codex,
      ['sandbox', '-c', 'sandbox_mode=workspace-write', '--', 'sh', '-c', 'echo ok > probe && cat probe'],
      { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, HOME: dir, CODEX_HOME: dir } },
    );
    codexSandbox = r.status === 0 && r.stdout.includes('ok') ? 'workspace-write' : 'danger-full-access';
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return codexSandbox;
}

async function driveCline(p, api, timeoutMs) {
  const h = await offlineHost('cline', p, api);
  return runProcess(HOST_BINS.cline, ['--json', '-c', p.root, ...h.args, PROMPT], {
    cwd: p.root,
    env: h.env,
    timeoutMs,
  });
}

export const DRIVERS = { claude: driveClaude, codex: driveCodex, cline: driveCline };

/**
 * The fake API answering from the scripted model for project `p` (model options in `opts`); `onAnswer` sees each
 * answer to the host's main conversation before it is sent (a test can act at a chosen step).
 */
export async function scriptedApi(p, opts = {}, onAnswer) {
  const model = createModel({ cwd: p.root, ...opts });
  return startFakeApi({
    model: (conv) => {
      const answer = model(conv);
      if (conv.main) onAnswer?.(answer);
      return answer;
    },
  });
}

/**
 * Wait (up to a minute) until mcp-server/dist is complete and has not changed for 2 s: the hosts run it, and a
 * build in progress (another checkout user's `npm run build`) would fail their server's start.
 */
export async function settledDist() {
  const dist = path.join(REPO, 'mcp-server', 'dist');
  const files = [
    'loki-mcp.js',
    'loki.js',
    'server.cjs',
    'cli.cjs',
    'loki-hook.cjs',
    'hook.cjs',
    'hook-guard.cjs',
    'hook-usage.cjs',
    'yaml.cjs',
  ];
  const stamp = () =>
    files.map((f) => {
      try {
        const st = fs.statSync(path.join(dist, f));
        return `${st.size}:${st.mtimeMs}`;
      } catch {
        return 'missing';
      }
    });
  const deadline = Date.now() + 60_000;
  let last = '';
  let sameSince = Date.now();
  while (Date.now() < deadline) {
    const now = stamp();
    const key = now.join(',');
    if (key !== last) {
      last = key;
      sameSince = Date.now();
    } else if (!now.includes('missing') && Date.now() - sameSince >= 2000) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${dist} is incomplete or still changing: build it (node scripts/build.mjs)`);
}

/**
 * One honest run of the calc spec in a host. Returns the report (see `analyse`) and the project (removed by
 * `cleanup()`).
 */
export async function honestRun(host, opts = {}) {
  await settledDist();
  const p = makeProject();
  const model = createModel({ cwd: p.root, ...opts });
  const api = await startFakeApi({ model });
  let proc;
  try {
    proc = await DRIVERS[host](p, api, opts.timeoutMs ?? 300_000);
  } finally {
    await api.close();
  }
  const report = analyse(host, api.requests, p);
  report.leftRunning = leftRunning(p.base);
  report.egress = api.egress;
  report.process = {
    code: proc.code,
    signal: proc.signal,
    timedOut: proc.timedOut,
    stderr: proc.stderr.slice(-4000),
    stdout: proc.stdout.slice(-4000),
  };
  // Claude Code's debug log, when the run never reached a loki tool: what happened to the MCP server.
  const debug = path.join(p.home, 'claude-debug.log');
  if (report.lokiCalls === 0 && fs.existsSync(debug))
    report.process.debug = fs
      .readFileSync(debug, 'utf8')
      .split('\n')
      .filter((l) => /mcp|loki|plugin/i.test(l))
      .slice(-40)
      .join('\n');
  // LOKI_E2E_KEEP=1 keeps the project and scratch home for a look afterwards.
  const cleanup = process.env.LOKI_E2E_KEEP ? () => log(`kept ${p.base}`) : p.cleanup;
  return { host, project: p, requests: api.requests, report, cleanup };
}

// ------------------------------------------------------------------------------------------------------------
// What happened: from the requests (what the model saw) and from what the server stored.

/** The report of a run: calls, loki results as shown to the model, defects, the stored outcome. */
export function analyse(host, requests, p) {
  const main = requests.filter((r) => r.answer && (r.body.tools?.length ?? 0) > 0);
  const lastReq = main.at(-1);
  const first = main[0];
  const conv = lastReq?.conv ?? { items: [], tools: [] };
  const calls = conv.items.filter((i) => i.kind === 'call');
  const exchanges = lokiExchanges(conv.items);
  // The answer to the last request is not in any request: add its calls (they got no result the model saw).
  const defects = [];
  const lokiResults = [];
  for (const ex of exchanges) {
    if (!ex.result) continue;
    const shown = ex.result.text;
    lokiResults.push({ tool: ex.lokiName, chars: shown.length, args: ex.call.args });
    if (isRefused(conv, ex.result))
      defects.push({ kind: 'refused', tool: ex.lokiName, args: ex.call.args, text: shown.slice(0, 1500) });
    else {
      const line = extractNext(ex.result.raw ?? shown);
      if (line === undefined)
        defects.push({ kind: 'no Next line the model can see', tool: ex.lokiName, text: shown.slice(-600) });
      else if (!parseNext(line).tool && parseNext(line).bare)
        defects.push({ kind: 'Next names a loki tool without JSON arguments', tool: ex.lokiName, next: line });
    }
    if (shown.length > 6000)
      defects.push({ kind: 'result over 6,000 characters', tool: ex.lokiName, chars: shown.length });
  }
  const lastLokiResult = exchanges.at(-1)?.result?.text;
  const largest = lokiResults.reduce((a, b) => (b.chars > (a?.chars ?? -1) ? b : a), undefined);
  const stored = storedOutcome(p);
  return {
    host,
    requests: requests.length,
    modelRequests: main.length,
    toolCalls: calls.length,
    toolSearchCalls: calls.filter((c) => c.name === 'ToolSearch').length,
    lokiCalls: exchanges.length,
    lokiCallsByTool: countBy(exchanges.map((e) => e.lokiName)),
    lokiResultChars: lokiResults.reduce((s, r) => s + r.chars, 0),
    largest,
    firstToolsChars: first ? JSON.stringify(first.body.tools ?? []).length : 0,
    finalAnswer: lastReq?.answer,
    lastLokiResult,
    defects,
    lokiResults,
    conv,
    ...stored,
  };
}

function countBy(xs) {
  const out = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** What the server stored: the run's status, the receipt headline, and the MCP client names of its sessions. */
export function storedOutcome(p) {
  const out = { runStatus: undefined, receipt: undefined, clients: [] };
  const db = path.join(p.root, '.loki', 'loki.db');
  const proofs = path.join(p.root, '.loki', 'proofs');
  if (fs.existsSync(proofs)) {
    // The receipt's headline: MANIFEST.json says it as data, RECEIPT.md as its first heading.
    for (const run of fs.readdirSync(proofs)) {
      const manifest = path.join(proofs, run, 'MANIFEST.json');
      const receipt = path.join(proofs, run, 'RECEIPT.md');
      if (fs.existsSync(manifest)) out.receipt = JSON.parse(fs.readFileSync(manifest, 'utf8')).headline;
      else if (fs.existsSync(receipt)) out.receipt = /^# (.+)$/m.exec(fs.readFileSync(receipt, 'utf8'))?.[1];
    }
  }
  if (fs.existsSync(db)) {
    const d = new DatabaseSync(db, { readOnly: true });
    try {
      for (const row of d.prepare("SELECT key, body FROM docs WHERE key = 'run' OR key LIKE 'session/%'").all()) {
        const body = JSON.parse(String(row.body));
        if (row.key === 'run') out.runStatus = body.status;
        else if (body.client) out.clients.push(body.client);
      }
    } finally {
      d.close();
    }
  }
  return out;
}

/** Processes still running inside the run's folder (their working directory or command line): none may be. */
export function leftRunning(base) {
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        /* not ours to read */
      }
      if (cmd.includes(base) || cwd.startsWith(base)) out.push(`${pid} ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** One paragraph for a failing assertion: the figures, the defects and how the run ended. */
export function summary(r) {
  return [
    `${r.host}: ${r.lokiCalls} loki calls of ${r.toolCalls}, ${r.lokiResultChars} chars of loki results, largest ${r.largest?.tool} ${r.largest?.chars}; run ${r.runStatus}, receipt ${r.receipt}`,
    `loki calls: ${JSON.stringify(r.lokiCallsByTool)}`,
    `final answer: ${JSON.stringify(r.finalAnswer)}`,
    ...(r.receipt ? [] : [`last loki result: ${r.lastLokiResult?.slice(-1500)}`]),
    ...r.defects.map((d) => `defect: ${d.kind}: ${d.tool} ${d.next ?? d.text ?? d.chars ?? ''}`.slice(0, 700)),
    `host exit ${r.process?.code}${r.process?.timedOut ? ' (timed out)' : ''}`,
    ...(r.lokiCalls === 0
      ? [`host stderr: ${r.process?.stderr.slice(-2500)}`, `host stdout: ${r.process?.stdout.slice(-1500)}`]
      : []),
  ].join('\n');
}

export { PREMATURE_STOP_TEXT } from './model.mjs';
export { lokiName, strings };
