/**
 * The scripted model: one policy for every wire format (fake-api.mjs turns each request into a neutral
 * conversation). It is stateless, like a real model: every answer is derived from the conversation the host sent.
 *
 * It FOLLOWS `next` LITERALLY. The only loki call it chooses itself is the first, `loki_start {"spec":"prd.md"}`
 * (`loki_status {}` with `fromStatus`, for sessions of a run `loki run` started);
 * after that every loki call comes from the `Next:` line of the previous loki result:
 *   - `Next: ... loki_<name> {json} ...`: call that tool with those arguments, adding only the fields only the
 *     model can supply (read from the tool's inputSchema as the host sent it); the Next arguments win.
 *   - `work on <task-id>` before the call: first do the task's real work with the host's own tools (write the
 *     implementation and its tests, run the tests), then make the call.
 *   - a Next line without a loki call: end the turn with a short text answer.
 * A result with no Next line, a refused (isError) loki call, or a Next line naming a loki tool without JSON
 * arguments is recorded as a defect. With `lenient` (the default) the model still goes on where it can (a bare
 * `loki_x` is called with {} plus its own fields; a structured `next` field stands in for a missing Next line), so
 * one run shows every defect; the tests fail on any.
 */

/** The project's work, one module per requirement: what the model writes for a task that names it. */
export const REQUIREMENTS = [
  {
    id: 'R1',
    fn: 'add',
    impl: 'function add(a, b) {\n  return a + b;\n}\n\nmodule.exports = { add };\n',
    test: "const test = require('node:test');\nconst assert = require('node:assert');\nconst { add } = require('../src/add.js');\n\ntest('add sums two numbers', () => {\n  assert.strictEqual(add(2, 3), 5);\n  assert.strictEqual(add(-2, 3), 1);\n});\n",
  },
  {
    id: 'R2',
    fn: 'subtract',
    impl: 'function subtract(a, b) {\n  return a - b;\n}\n\nmodule.exports = { subtract };\n',
    test: "const test = require('node:test');\nconst assert = require('node:assert');\nconst { subtract } = require('../src/subtract.js');\n\ntest('subtract returns the difference', () => {\n  assert.strictEqual(subtract(5, 3), 2);\n  assert.strictEqual(subtract(3, 5), -2);\n});\n",
  },
  {
    id: 'R3',
    fn: 'multiply',
    impl: 'function multiply(a, b) {\n  return a * b;\n}\n\nmodule.exports = { multiply };\n',
    test: "const test = require('node:test');\nconst assert = require('node:assert');\nconst { multiply } = require('../src/multiply.js');\n\ntest('multiply returns the product', () => {\n  assert.strictEqual(multiply(4, 3), 12);\n  assert.strictEqual(multiply(-2, 3), -6);\n});\n",
  },
  {
    id: 'R4',
    fn: 'divide',
    impl: "function divide(a, b) {\n  if (b === 0) throw new RangeError('division by zero');\n  return a / b;\n}\n\nmodule.exports = { divide };\n",
    test: "const test = require('node:test');\nconst assert = require('node:assert');\nconst { divide } = require('../src/divide.js');\n\ntest('divide returns the quotient', () => {\n  assert.strictEqual(divide(12, 3), 4);\n});\n\ntest('divide by zero throws a RangeError', () => {\n  assert.throws(() => divide(1, 0), RangeError);\n});\n",
  },
];

export const PRD = [
  '# calc: a tiny calculator module',
  '',
  'A Node.js library (CommonJS, no dependencies) with one module per operation under src/ and node:test tests',
  'under test/. `npm test` runs `node --test`.',
  '',
  '## Requirements',
  '',
  '- R1: `add(a, b)` in src/add.js returns the sum of two numbers',
  '- R2: `subtract(a, b)` in src/subtract.js returns the difference of two numbers',
  '- R3: `multiply(a, b)` in src/multiply.js returns the product of two numbers',
  '- R4: `divide(a, b)` in src/divide.js returns the quotient and throws a RangeError when b is 0',
  '',
].join('\n');

/** What the model does while the host has not connected the loki server yet. */
const WAIT_COMMAND = 'sleep 1; cat prd.md';

export const PREMATURE_STOP_TEXT = 'I have made good progress; stopping here for now.';

/**
 * @param {{ cwd: string, lenient?: boolean, prematureStop?: boolean, probeGuard?: boolean, maxRequests?: number, fromStatus?: boolean }} cfg
 */
export function createModel(cfg) {
  const lenient = cfg.lenient ?? true;
  let mainRequests = 0;
  const model = (conv) => {
    if (!conv.main) return { text: 'ok' };
    mainRequests += 1;
    if (mainRequests > (cfg.maxRequests ?? 200)) return { text: 'Stopping: too many requests.' };
    return decide(conv, cfg, lenient);
  };
  return model;
}

/** `loki_x` for a host tool name (mcp__plugin_loki-mode_loki__loki_x, mcp__loki__loki_x, loki__loki_x, ...). */
export function lokiName(name) {
  const m = /(?:^|__)(loki_[a-z]+(?:_[a-z]+)*)$/.exec(name ?? '');
  return m ? m[1] : undefined;
}

/** Every string inside a value shown to the model, JSON-looking strings parsed and searched too. */
export function strings(value, out = [], depth = 0) {
  if (depth > 8) return out;
  if (typeof value === 'string') {
    out.push(value);
    const start = value.search(/[[{]/);
    if (start >= 0) {
      for (const candidate of [value.slice(start), value.trim()]) {
        try {
          const parsed = JSON.parse(candidate);
          if (parsed && typeof parsed === 'object') {
            strings(parsed, out, depth + 1);
            break;
          }
        } catch {
          /* not JSON */
        }
      }
    }
  } else if (Array.isArray(value)) for (const v of value) strings(v, out, depth + 1);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) strings(v, out, depth + 1);
  return out;
}

/** The structured `next` field of a JSON result, when there is one. */
function structuredNext(value, depth = 0) {
  if (depth > 8) return undefined;
  if (typeof value === 'string') {
    const start = value.indexOf('{');
    if (start < 0) return undefined;
    try {
      return structuredNext(JSON.parse(value.slice(start)), depth + 1);
    } catch {
      return undefined;
    }
  }
  if (Array.isArray(value)) {
    for (const v of value) {
      const n = structuredNext(v, depth + 1);
      if (n) return n;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    if (typeof value.next === 'string') return value.next;
    for (const v of Object.values(value)) {
      const n = structuredNext(v, depth + 1);
      if (n) return n;
    }
  }
  return undefined;
}

/** The `Next: ` line of a result as the host showed it (the last one found), or undefined. */
export function extractNext(shown) {
  let found;
  for (const s of strings(shown))
    for (const line of s.split('\n')) if (line.startsWith('Next: ')) found = line.slice('Next: '.length).trim();
  return found;
}

/** A balanced JSON object at the start of `s`, or undefined. */
function jsonObjectAt(s) {
  if (s[0] !== '{') return undefined;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) {
      try {
        return JSON.parse(s.slice(0, i + 1));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** `work on <task-id>` (or `finish <task-id>`, for a task already claimed) before the call. */
const WORK = /\b(?:work on|finish) ([A-Za-z0-9][A-Za-z0-9._-]*)/;

/**
 * What a Next line asks: { tool, args, workOn } (tool undefined: end the turn). `bare` is set when it names a loki
 * tool without JSON arguments (a contract defect).
 */
export function parseNext(line) {
  const re = /loki_[a-z_]+/g;
  let m;
  let bare;
  while ((m = re.exec(line))) {
    const rest = line.slice(m.index + m[0].length);
    if (rest.startsWith(' {')) {
      const args = jsonObjectAt(rest.slice(1));
      if (args) {
        const before = line.slice(0, m.index);
        const work = WORK.exec(before);
        return { tool: m[0], args, workOn: work?.[1] };
      }
    }
    bare ??= m[0];
  }
  const work = WORK.exec(line);
  return { tool: undefined, args: undefined, workOn: work?.[1], bare };
}

/** The requirement a task names: searched after the task id's occurrences in what the model has seen. */
function requirementOf(taskId, texts) {
  for (const t of [...texts].reverse()) {
    let from = t.lastIndexOf(taskId);
    while (from >= 0) {
      const window = t.slice(from, from + 400);
      let best;
      for (const r of REQUIREMENTS) {
        const at = Math.min(
          ...[new RegExp(`\\b${r.id}\\b`), new RegExp(`\\b${r.fn}\\(`)].map((re) => {
            const i = window.search(re);
            return i < 0 ? Infinity : i;
          }),
        );
        if (at < Infinity && (!best || at < best.at)) best = { r, at };
      }
      if (best) return best.r;
      from = from > 0 ? t.lastIndexOf(taskId, from - 1) : -1;
    }
  }
  return undefined;
}

/** Host tools for the work: a file-writing tool when there is one, else the shell. */
function workTools(conv) {
  const by = (...names) => conv.tools.find((t) => names.includes(t.name));
  return {
    write: by('Write', 'write_to_file', 'write_file'),
    shell: by('Bash', 'run_commands', 'execute_command', 'shell', 'exec_command', 'shell_command', 'local_shell'),
  };
}

function writeCall(conv, cfg, rel, content) {
  const { write, shell } = workTools(conv);
  if (write?.name === 'Write') return { name: 'Write', args: { file_path: `${cfg.cwd}/${rel}`, content } };
  if (write) return { name: write.name, args: { path: rel, content } };
  return shellCall(
    conv,
    cfg,
    `mkdir -p ${rel.replace(/\/[^/]*$/, '')} && cat > ${rel} <<'LOKI_EOF'\n${content}LOKI_EOF`,
    shell,
  );
}

function shellCall(conv, cfg, command, shell = workTools(conv).shell) {
  if (!shell) throw new Error(`no shell tool among ${conv.tools.map((t) => t.name).join(', ')}`);
  switch (shell.name) {
    case 'Bash':
      return { name: 'Bash', args: { command, description: 'Run a command' } };
    case 'run_commands':
      return { name: shell.name, args: { commands: [command] } };
    case 'execute_command':
      return { name: shell.name, args: { command, requires_approval: false } };
    case 'shell':
      return { name: shell.name, args: { command: ['bash', '-lc', command], workdir: cfg.cwd } };
    case 'exec_command':
      return { name: shell.name, args: { cmd: command, workdir: cfg.cwd } };
    default:
      return { name: shell.name, args: { command, workdir: cfg.cwd } };
  }
}

/** The host actions that come before a loki call, given the last loki call and its Next. */
function stepsBefore(conv, cfg, last, next, seen) {
  const steps = [];
  if (cfg.probeGuard && last?.lokiName === 'loki_start') {
    steps.push(writeCall(conv, cfg, '.loki/probe-write.txt', 'written by the write tool\n'));
    steps.push(shellCall(conv, cfg, 'echo written by the shell > .loki/probe-shell.txt'));
  }
  if (next?.workOn) {
    const r = requirementOf(next.workOn, [...seen, next.line]);
    if (!r) throw new Error(`cannot tell which requirement ${next.workOn} names`);
    steps.push(writeCall(conv, cfg, `src/${r.fn}.js`, r.impl));
    steps.push(writeCall(conv, cfg, `test/${r.fn}.test.js`, r.test));
    steps.push(shellCall(conv, cfg, 'npm test'));
  }
  return steps;
}

/** Arguments only the model can supply, added to what the Next line gave (which wins). */
function ownFields(tool, schema, nextArgs, seen) {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const add = {};
  const want = (k) => k in props && !(k in nextArgs);
  switch (tool) {
    case 'loki_task_complete':
      if (want('token')) add.token = claimToken(nextArgs.id, seen);
      if (want('summary')) add.summary = 'Implemented the requirement with node:test tests; npm test passes.';
      if (want('evidence')) add.evidence = ['npm test passes'];
      break;
    case 'loki_council_vote': {
      if (want('vote')) add.vote = 'approve';
      if (want('rationale'))
        add.rationale = 'The facts in the brief show the build and tests passing and every requirement implemented.';
      if (want('evidence')) add.evidence = factKeys(seen);
      const judged = heldOutItems(seen);
      if (want('items') && judged.length)
        add.items = judged.map((id) => ({ id, met: true, note: 'Checked against the code and the passing tests.' }));
      break;
    }
    case 'loki_checklist_set': {
      const itemSchema = props.items?.items?.properties ?? {};
      if (Array.isArray(nextArgs.items) && itemSchema.evidence)
        add.items = nextArgs.items.map((i) => ({
          evidence:
            itemSchema.evidence.type === 'array'
              ? ['npm test passes (node --test)']
              : 'npm test passes (node --test); the code is in src/ with tests in test/',
          ...i,
        }));
      break;
    }
    case 'loki_task_fail':
      if (want('error')) add.error = 'The work could not be finished.';
      break;
    default:
      break;
  }
  for (const k of required) {
    if (k in nextArgs || k in add) continue;
    const type = props[k]?.type;
    add[k] = type === 'array' ? [] : type === 'boolean' ? false : type === 'integer' || type === 'number' ? 0 : 'n/a';
  }
  return add;
}

/** The claim token the model was given for a task (the latest one shown after the task's id). */
function claimToken(id, seen) {
  for (const t of [...seen].reverse()) {
    if (id && !t.includes(id)) continue;
    const m = [...t.matchAll(/\btoken\b["'\s:=]+([A-Za-z0-9_-]{12,})/g)].at(-1);
    if (m) return m[1];
  }
  return undefined;
}

/** The latest council brief the model was shown (the one its vote answers). */
function latestBrief(seen) {
  return [...seen].reverse().find((t) => /fact keys \(/.test(t)) ?? '';
}

/** Fact keys the brief offers to cite ("evidence citing fact keys (v0001, v0001:tests, ...)"). */
function factKeys(seen) {
  const brief = latestBrief(seen);
  const list = (/fact keys \(([^)]*)\)/.exec(brief)?.[1] ?? '').split(',').map((k) => k.trim());
  const keys = list.filter((k) => k && k !== '...' && !k.includes('<'));
  // A pattern such as item:<id> stands for the items the brief lists.
  if (list.some((k) => k.includes('<')))
    keys.push(...[...brief.matchAll(/\bitem:[a-z0-9][a-z0-9._-]*/g)].map((m) => m[0]));
  return [...new Set(keys)].slice(0, 30);
}

/** The held-out items the brief asks a verdict on ("... without a machine check (r-1, r-2)."). */
function heldOutItems(seen) {
  const list = /held-out item without a machine check \(([^)]*)\)/.exec(latestBrief(seen))?.[1] ?? '';
  return list
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

/** The loki calls in the conversation with their results, in order. */
export function lokiExchanges(items) {
  const results = new Map(items.filter((i) => i.kind === 'result').map((i) => [i.id, i]));
  return items
    .map((it, index) => ({ it, index }))
    .filter(({ it }) => it.kind === 'call' && lokiName(it.name))
    .map(({ it, index }) => ({ index, call: it, lokiName: lokiName(it.name), result: results.get(it.id) }));
}

function decide(conv, cfg, lenient) {
  const items = conv.items;
  const exchanges = lokiExchanges(items);
  const last = exchanges.at(-1);
  const seen = items.filter((i) => i.kind === 'result').flatMap((i) => strings(i.raw ?? i.text));
  let wanted;
  let next;
  // A session of a run already started (`loki run`) starts from the briefing, as its prompt says.
  if (!last)
    wanted = cfg.fromStatus ? { tool: 'loki_status', args: {} } : { tool: 'loki_start', args: { spec: 'prd.md' } };
  else {
    if (!last.result) return { text: `Stopping: ${last.lokiName} has no result.` };
    if (isRefused(conv, last.result)) return { text: `Stopping: ${last.lokiName} was refused.` };
    const key = (e) => `${e.lokiName} ${JSON.stringify(e.call.args)}`;
    if (exchanges.length >= 4 && exchanges.slice(-4).every((e) => key(e) === key(last)))
      return { text: `Stopping: ${last.lokiName} four times in a row with the same arguments.` };
    let line = extractNext(last.result.raw ?? last.result.text);
    if (line === undefined && lenient) line = structuredNext(last.result.raw ?? last.result.text);
    // Lenient: with no next step visible at all, do what the server's instructions say every turn.
    if (line === undefined && lenient) line = 'loki_status {}';
    if (line === undefined) return { text: `Stopping: the ${last.lokiName} result has no Next line.` };
    next = { ...parseNext(line), line };
    if (!next.tool && next.bare && lenient) next = { ...next, tool: next.bare, args: {} };
    if (next.tool) wanted = { tool: next.tool, args: next.args };
  }
  // The premature stop: end the turn once, just before the first task's work.
  const stoppedBefore = items.some((i) => i.kind === 'assistant' && i.text.includes(PREMATURE_STOP_TEXT));
  const afterLast = items.slice(last ? last.index + 1 : 0);
  const workDone = afterLast.filter((i) => i.kind === 'call' && !lokiName(i.name) && i.name !== 'ToolSearch').length;
  if (cfg.prematureStop && next?.workOn && workDone === 0 && !stoppedBefore) return { text: PREMATURE_STOP_TEXT };
  const steps = stepsBefore(conv, cfg, last, next, seen);
  if (workDone < steps.length) return { calls: [steps[workDone]] };
  if (!wanted) return { text: `Done for this turn (${next ? 'the next step names no loki call' : 'nothing to do'}).` };
  const tool = conv.tools.find((t) => lokiName(t.name) === wanted.tool);
  if (!tool) {
    // Claude Code defers MCP tools: load the schema first (the names are listed in a system message).
    const search = conv.tools.find((t) => t.name === 'ToolSearch');
    const all =
      items
        .filter((i) => i.kind === 'user')
        .map((i) => i.text)
        .join('\n') + (conv.system ?? '');
    const full = new RegExp(`\\S*__${wanted.tool}\\b`).exec(all)?.[0];
    if (search && full) return { calls: [{ name: 'ToolSearch', args: { query: `select:${full}` } }] };
    // The host has not connected the loki server yet (a host may send the first request before its MCP servers
    // are up): read the spec meanwhile, a few times at most, and look again on the next request.
    const waited = items.filter((i) => i.kind === 'call' && JSON.stringify(i.args).includes(WAIT_COMMAND)).length;
    if (!last && waited < 5) return { calls: [shellCall(conv, cfg, WAIT_COMMAND)] };
    return { text: `Stopping: no tool ${wanted.tool} among the tools.` };
  }
  const own = ownFields(wanted.tool, tool.schema, wanted.args, seen);
  // The Next arguments win; items the model completed (evidence added to each) keep every field Next gave.
  const args = { ...own, ...wanted.args, ...(own.items ? { items: own.items } : {}) };
  return { calls: [{ name: tool.name, args }] };
}

/** Whether the host showed the result as a refusal (isError). */
export function isRefused(conv, result) {
  if (result.isError) return true;
  // Cline JSON-encodes the CallToolResult (isError inside it). Codex shows an error result's text with nothing to
  // mark it: known by the server's error form, "loki_<tool>: <what to fix>" as the whole output.
  const all = strings(result.raw ?? result.text);
  if (all.some((s) => /"isError"\s*:\s*true/.test(s))) return true;
  const shown = result.text.replace(/^Wall time: [^\n]*\nOutput:\n?/, '').trimStart();
  return /^loki_[a-z_]+: /.test(shown) && !/^loki_[a-z_]+: [^\n]*\n[\s\S]*Next: /.test(shown);
}
