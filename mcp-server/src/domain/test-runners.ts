/**
 * Test runs counted from the runner's own report, not from text the agent controls. Pure: the caller reads
 * package.json, creates the report file, runs the planned command and reads the file back.
 *
 * `planTestRun` turns a configured test command (`npm test`, `pytest -q`, ...) into the command that really runs,
 * with the runner's machine-readable reporter writing to a file the caller named fresh for this check. Package
 * scripts are resolved to their bodies (`npm test -> vitest run`). Only a known runner, alone or `&&`-joined after
 * plain build steps, is planned; anything the server cannot see through (pipes, redirections, `||`, `;`, `&`,
 * subshells, substitutions, variables, `echo`, shells, unknown runners, two runners, commands after the runner,
 * which could rewrite its report) is `unverified`, with the reason, and the caller counts it from its output.
 *
 * `readReport` parses that file. A report that is empty, cut short or not in the runner's format is an error,
 * never zero tests. Test ids are stable across runs and checkouts: file paths relative to the run's directory
 * (pass `cwd` for runners that report absolute paths), then the test's full name.
 *
 * Command lines are parsed with shell-quote and put back together with its `quote`, never split by hand.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { parse, quote, type ParseEntry } from 'shell-quote';
import type { TestCounts } from './test-output.js';

export type RunnerName = 'node:test' | 'vitest' | 'jest' | 'mocha' | 'pytest' | 'go' | 'cargo';

export interface TestPlan {
  runner: RunnerName;
  /**
   * The shell command to run instead of the configured one: the runner itself with the machine-readable reporter
   * writing to reportFile (a human-readable reporter kept on the terminal where the runner allows two). When the
   * command came from package.json scripts, `binPath` says so.
   */
  command: string;
  /**
   * Put the run directory's `node_modules/.bin` first on PATH, as npm does for a script: the command came from
   * package.json scripts. (Not `npm exec -c`, which costs a second node start, over a second per check.)
   */
  binPath: boolean;
  /** Extra environment for it (e.g. RUSTC_BOOTSTRAP for cargo's JSON format), usually {}. */
  env: Record<string, string>;
  /** What really runs, in words for the receipt: the configured command with script bodies resolved, e.g. "npm test -> vitest run". */
  resolved: string;
}

export type PlanResult = { plan: TestPlan } | { unverified: string; resolved: string };

export interface ReportedTest {
  /** Stable across runs and checkouts: `<file or scope>::<full name>` (a ` (2)` suffix on a repeated name). */
  id: string;
  file: string | null;
  name: string;
  outcome: 'passed' | 'failed' | 'skipped';
  /** A failure of a whole file or package (did not load, a hook threw), not of one test. */
  whole: boolean;
}

export interface TestReport {
  counts: TestCounts;
  tests: ReportedTest[];
}

// ---------------------------------------------------------------------------------------------------------------
// Shell command lines

/** A word of a simple command: a string, or an unquoted glob the shell expands (kept as written). */
type Word = string | { glob: string };

/** One simple command: leading VAR=value assignments, the words, and (for go and cargo) a file for its stdout. */
interface Cmd {
  env: [string, string][];
  words: Word[];
  stdoutTo?: string;
  /** The package scripts this command came from, outermost first. */
  from?: string[];
}

interface Why {
  why: string;
}

const isWhy = (x: unknown): x is Why => typeof x === 'object' && x !== null && 'why' in x;

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/;
/** A glob is put back as written: only when it needs no quoting beyond the glob characters. */
const SAFE_GLOB = /^[\w./*?[\]{},@+:=%^-]+$/;

const OPERATOR_WHY: Record<string, string> = {
  '|': 'pipes its output',
  '|&': 'pipes its output',
  '||': 'carries on after a failure with ||',
  ';': 'runs commands one after another with ; (only the last exit code counts)',
  ';;': 'uses ;;',
  ';&': 'uses ;&',
  ';;&': 'uses ;;&',
  '&': 'runs a command in the background with &',
  '(': 'uses a subshell',
  ')': 'uses a subshell',
  '<(': 'uses process substitution',
  '>(': 'uses process substitution',
};

function operatorWhy(op: string): string {
  if (OPERATOR_WHY[op]) return OPERATOR_WHY[op];
  if (op.includes('>')) return 'redirects output';
  if (op.includes('<')) return 'redirects input';
  return `uses the shell operator ${op}`;
}

/** A word with no character the shell treats specially is shown as it is, not with the escapes quote adds. */
const PLAIN_WORD = /^[\w@%+=:,./-]+$/;

function renderWord(w: Word): string {
  if (typeof w !== 'string') return w.glob;
  return PLAIN_WORD.test(w) ? w : quote([w]);
}

function renderCmd(c: Cmd): string {
  const parts = [...c.env.map(([k, v]) => `${k}=${renderWord(v)}`), ...c.words.map(renderWord)];
  if (c.stdoutTo !== undefined) parts.push('>', quote([c.stdoutTo]));
  return parts.join(' ');
}

const renderChain = (cmds: Cmd[]): string => cmds.map(renderCmd).join(' && ');

/** A command line as simple commands joined by `&&`, or why it is more than that. */
function parseChain(text: string, where: string): Cmd[] | Why {
  const bad = (what: string): Why => ({ why: `${where} ${what} (\`${text.trim()}\`)` });
  if (/[\n\r]/.test(text)) return bad('spans several lines');
  let entries: (ParseEntry | { var: string })[];
  try {
    entries = parse(text, (key: string) => ({ var: key }));
  } catch {
    return bad('has a substitution the server cannot read');
  }
  const cmds: Cmd[] = [];
  let words: Word[] = [];
  const close = (): Why | null => {
    const env: [string, string][] = [];
    let i = 0;
    for (; i < words.length; i++) {
      const w = words[i]!;
      const m = typeof w === 'string' ? ASSIGNMENT.exec(w) : null;
      if (!m) break;
      env.push([m[1]!, m[2]!]);
    }
    if (i === words.length) return bad(words.length === 0 ? 'has an empty command' : 'has a command with no program');
    cmds.push({ env, words: words.slice(i) });
    words = [];
    return null;
  };
  for (const e of entries) {
    if (typeof e === 'string') {
      if (e.includes('`')) return bad('uses command substitution');
      words.push(e);
    } else if ('comment' in e) {
      break;
    } else if ('var' in e) {
      return bad(e.var === '' ? 'uses command substitution' : `expands a shell variable ($${e.var})`);
    } else if (e.op === 'glob') {
      if (!SAFE_GLOB.test(e.pattern)) return bad(`has a pattern the server cannot put back as written (${e.pattern})`);
      words.push({ glob: e.pattern });
    } else if (e.op === '&&') {
      const err = close();
      if (err) return err;
    } else {
      return bad(operatorWhy(e.op));
    }
  }
  const err = close();
  return err ?? cmds;
}

const str = (w: Word | undefined): string | undefined => (typeof w === 'string' ? w : undefined);
const base = (w: Word | undefined): string | undefined => {
  const s = str(w);
  return s === undefined ? undefined : path.posix.basename(s);
};

// ---------------------------------------------------------------------------------------------------------------
// Package scripts

type Scripts = Record<string, string>;

interface ScriptCall {
  pm: 'npm' | 'pnpm' | 'yarn';
  script: string;
  args: Word[];
}

const NPM_QUIET = new Set(['-s', '--silent', '-q', '--quiet']);
const TEST_ALIASES = new Set(['test', 't', 'tst']);
const NPM_RUN = new Set(['run', 'run-script', 'rum', 'urn']);
/** pnpm and yarn commands that win over a script of the same name (not a complete list: those a test step uses). */
const PM_BUILTINS = new Set([
  'add',
  'audit',
  'bin',
  'build',
  'cache',
  'config',
  'create',
  'dlx',
  'exec',
  'i',
  'import',
  'info',
  'init',
  'install',
  'link',
  'list',
  'ls',
  'node',
  'outdated',
  'pack',
  'patch',
  'prune',
  'publish',
  'rebuild',
  'remove',
  'rm',
  'run',
  'run-script',
  'start',
  'store',
  'unlink',
  'up',
  'update',
  'upgrade',
  'why',
  'workspace',
  'workspaces',
]);

/** `npm test`, `npm run x`, `pnpm x`, `yarn x`...: the script it runs and the arguments passed on; null if none. */
function scriptCall(cmd: Cmd, scripts: Scripts | null): ScriptCall | Why | null {
  const w = cmd.words;
  const pm = base(w[0]);
  if (pm !== 'npm' && pm !== 'pnpm' && pm !== 'yarn') return null;
  let i = 1;
  while (str(w[i])?.startsWith('-')) {
    if (!NPM_QUIET.has(str(w[i])!)) return { why: `\`${renderCmd(cmd)}\` passes ${pm} the option ${str(w[i])}` };
    i++;
  }
  const sub = str(w[i]);
  if (sub === undefined) return null;
  let script: string;
  let rest: Word[];
  if (TEST_ALIASES.has(sub) && (pm !== 'yarn' || sub === 'test')) {
    script = 'test';
    rest = w.slice(i + 1);
  } else if (NPM_RUN.has(sub) && (pm === 'npm' || sub === 'run' || sub === 'run-script')) {
    const name = str(w[i + 1]);
    if (name === undefined) return { why: `\`${renderCmd(cmd)}\` names no script` };
    // `yarn run <bin>` runs a binary when there is no such script: a wrapper, handled with the runners.
    if (pm === 'yarn' && scripts && !Object.hasOwn(scripts, name)) return null;
    script = name;
    rest = w.slice(i + 2);
  } else if (pm !== 'npm' && !PM_BUILTINS.has(sub) && scripts && Object.hasOwn(scripts, sub)) {
    script = sub;
    rest = w.slice(i + 1);
  } else {
    return null;
  }
  // npm keeps the options before `--` for itself and passes the rest on; pnpm and yarn pass everything on.
  const args: Word[] = [];
  let passing = pm !== 'npm';
  for (let k = 0; k < rest.length; k++) {
    const a = rest[k]!;
    if (a === '--' && (k === 0 || !passing)) {
      passing = true;
      continue;
    }
    if (!passing && typeof a === 'string' && a.startsWith('-')) {
      if (NPM_QUIET.has(a)) continue;
      return { why: `\`${renderCmd(cmd)}\` gives npm the option ${a}, which npm keeps for itself` };
    }
    args.push(a);
  }
  return { pm, script, args };
}

function readScripts(pkg: string | undefined): Scripts | Why {
  if (pkg === undefined) return { why: 'there is no package.json to read its scripts from' };
  try {
    const json = JSON.parse(pkg) as { scripts?: unknown };
    const scripts: Scripts = {};
    if (json && typeof json.scripts === 'object' && json.scripts !== null)
      for (const [k, v] of Object.entries(json.scripts)) if (typeof v === 'string') scripts[k] = v;
    return scripts;
  } catch {
    return { why: 'package.json is not valid JSON' };
  }
}

const MAX_SCRIPT_DEPTH = 6;

interface Expanded {
  cmds: Cmd[];
  levels: string[];
  viaScripts: boolean;
}

/** The command with every package-script call replaced by its body, level by level (for `resolved`). */
function expandScripts(command: string, pkg: string | undefined): Expanded | (Why & { levels: string[] }) {
  const levels = [command.trim()];
  const first = parseChain(command, 'the test command');
  if (isWhy(first)) return { ...first, levels };
  let cmds = first;
  let scripts: Scripts | null | Why = null;
  let viaScripts = false;
  for (let depth = 0; ; depth++) {
    const next: Cmd[] = [];
    const shown: string[] = [];
    let changed = false;
    let movedDir = false;
    for (const cmd of cmds) {
      if (scripts === null && ['npm', 'pnpm', 'yarn'].includes(base(cmd.words[0]) ?? '')) scripts = readScripts(pkg);
      const call = scriptCall(cmd, isWhy(scripts) ? null : scripts);
      if (call === null) {
        if (base(cmd.words[0]) === 'cd') movedDir = true;
        next.push(cmd);
        shown.push(renderCmd(cmd));
        continue;
      }
      if (isWhy(call)) return { ...call, levels };
      if (isWhy(scripts)) return { ...scripts, levels };
      if (scripts === null) return { why: 'there is no package.json to read its scripts from', levels };
      if (movedDir) return { why: `the test command changes directory before \`${renderCmd(cmd)}\``, levels };
      if (cmd.from?.includes(call.script))
        return {
          why: `package.json script "${call.script}" calls itself (${[...cmd.from, call.script].join(' -> ')})`,
          levels,
        };
      if (depth >= MAX_SCRIPT_DEPTH)
        return { why: `package scripts call one another more than ${MAX_SCRIPT_DEPTH} deep`, levels };
      if (!Object.hasOwn(scripts, call.script))
        return { why: `package.json has no script "${call.script}" (\`${renderCmd(cmd)}\`)`, levels };
      const pre = `pre${call.script}`;
      const post = `post${call.script}`;
      const hooks = [pre, post].filter((s) => Object.hasOwn(scripts as Scripts, s));
      if (call.pm === 'yarn' && hooks.length > 0)
        return {
          why: `package.json has ${hooks.join(' and ')}, which yarn 1 runs with "${call.script}" and yarn 2+ does not`,
          levels,
        };
      const bodies: { name: string; text: string }[] = [];
      if (call.pm === 'npm' && Object.hasOwn(scripts, pre)) bodies.push({ name: pre, text: scripts[pre]! });
      const args = call.args.map(renderWord).join(' ');
      bodies.push({ name: call.script, text: args ? `${scripts[call.script]!} ${args}` : scripts[call.script]! });
      if (call.pm === 'npm' && Object.hasOwn(scripts, post)) bodies.push({ name: post, text: scripts[post]! });
      changed = true;
      viaScripts = true;
      for (const body of bodies) {
        const parsed = parseChain(body.text, `package.json script "${body.name}"`);
        if (isWhy(parsed)) {
          const prefix = cmd.env.map(([k, v]) => `${k}=${renderWord(v)} `).join('');
          shown.push(`${prefix}${body.text.trim()}`);
          const tail = cmds.slice(cmds.indexOf(cmd) + 1).map(renderCmd);
          levels.push([...shown, ...tail].join(' && '));
          return { ...parsed, levels };
        }
        for (const c of parsed) {
          const inner = { ...c, env: [...cmd.env, ...c.env], from: [...(cmd.from ?? []), call.script] };
          next.push(inner);
          shown.push(renderCmd(inner));
        }
      }
    }
    if (!changed) return { cmds, levels, viaScripts };
    cmds = next;
    levels.push(shown.join(' && '));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Wrappers and runners

const NPX_FLAGS = new Set(['--no-install', '--no', '--yes', '-y', '--quiet', '-q', '--prefer-offline']);
const RUN_WRAPPERS = new Set(['poetry', 'uv', 'pipenv', 'pdm', 'hatch', 'rye']);

/** Split off wrappers that only launch the next command (npx, pnpm exec, yarn <bin>, cross-env, c8, poetry run...). */
function unwrap(words: Word[], scripts: Scripts | null): { prefix: Word[]; core: Word[] } | Why {
  let core = words;
  const prefix: Word[] = [];
  const shown = () => words.map(renderWord).join(' ');
  for (let guard = 0; guard < 8; guard++) {
    const p = base(core[0]);
    const second = str(core[1]);
    let take = 0;
    const flagsFrom = (start: number, allowed: Set<string>): number | Why => {
      let k = start;
      while (str(core[k])?.startsWith('-')) {
        const f = str(core[k])!;
        if (f === '--') return k + 1;
        if (!allowed.has(f)) return { why: `\`${shown()}\` uses ${p} ${f}, which the server cannot follow` };
        k++;
      }
      return k;
    };
    if (p === 'npx') {
      const k = flagsFrom(1, NPX_FLAGS);
      if (isWhy(k)) return k;
      take = k;
    } else if (p === 'npm' && (second === 'exec' || second === 'x')) {
      const k = flagsFrom(2, NPX_FLAGS);
      if (isWhy(k)) return k;
      take = k;
    } else if ((p === 'pnpm' || p === 'yarn') && second === 'dlx') {
      return { why: `\`${shown()}\` downloads and runs a package` };
    } else if (p === 'pnpm' && second === 'exec') {
      take = str(core[2]) === '--' ? 3 : 2;
    } else if (p === 'yarn' && second === 'run' && !(scripts && Object.hasOwn(scripts, str(core[2]) ?? ''))) {
      take = 2;
    } else if (
      (p === 'pnpm' || p === 'yarn') &&
      second !== undefined &&
      !second.startsWith('-') &&
      !PM_BUILTINS.has(second) &&
      !TEST_ALIASES.has(second) &&
      !(scripts && Object.hasOwn(scripts, second))
    ) {
      take = 1; // `pnpm vitest`, `yarn jest`: runs the package's binary
    } else if (p === 'cross-env' || p === 'env') {
      let k = 1;
      while (typeof core[k] === 'string' && ASSIGNMENT.test(core[k] as string)) k++;
      if (str(core[k])?.startsWith('-')) return { why: `\`${shown()}\` uses ${p} ${str(core[k])}` };
      take = k;
    } else if (p === 'c8' || p === 'nyc') {
      let k = 1;
      while (str(core[k])?.startsWith('-')) k++;
      take = k;
    } else if (p !== undefined && RUN_WRAPPERS.has(p) && second === 'run') {
      if (str(core[2])?.startsWith('-')) return { why: `\`${shown()}\` passes ${p} run the option ${str(core[2])}` };
      take = 2;
    }
    if (take === 0) break;
    prefix.push(...core.slice(0, take));
    core = core.slice(take);
  }
  if (core.length === 0) return { why: `\`${shown()}\` names no command to run` };
  return { prefix, core };
}

/** Node options that take their value as the next word. */
const NODE_VALUE_FLAGS = new Set([
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '-C',
  '--conditions',
  '--env-file',
  '--env-file-if-exists',
  '--input-type',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-concurrency',
  '--test-timeout',
  '--test-shard',
  '--test-isolation',
  '--experimental-test-isolation',
  '--test-coverage-include',
  '--test-coverage-exclude',
  '--test-global-setup',
  '--watch-path',
  '--disable-warning',
  '--title',
  '--stack-size',
  '--max-old-space-size',
  '--unhandled-rejections',
]);
const NODE_CODE_FLAGS = new Set(['-e', '--eval', '-p', '--print']);

/** A runner's own program reached through `node <path>`: node_modules/jest/bin/jest.js and the like. */
const RUNNER_BINS: [RegExp, RunnerName][] = [
  [/(^|\/)vitest(\/vitest\.mjs)?$/, 'vitest'],
  [/(^|\/)jest(-cli)?\/bin\/jest(\.js)?$|(^|\/)\.bin\/jest$/, 'jest'],
  [/(^|\/)mocha\/bin\/_?mocha(\.js)?$|(^|\/)\.bin\/_?mocha$/, 'mocha'],
];

/** Test tools the server knows of but cannot read a report from: named in the reason. */
const OTHER_TEST_TOOLS = new Set([
  'ava',
  'bun',
  'concurrently',
  'cypress',
  'deno',
  'jasmine',
  'karma',
  'lab',
  'make',
  'ng',
  'npm-run-all',
  'nx',
  'playwright',
  'react-scripts',
  'run-p',
  'run-s',
  'tap',
  'tape',
  'ts-mocha',
  'tsx',
  'turbo',
  'uvu',
  'lerna',
  'just',
  'tox',
  'nox',
  'gradle',
  'mvn',
  'dotnet',
  'ctest',
]);

const FORBIDDEN: [Set<string>, string][] = [
  [new Set(['echo', 'printf', 'cat', 'tee', 'yes']), 'prints text that could pass for test output'],
  [
    new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'fish', 'eval', 'exec', 'source', '.']),
    'runs commands the server cannot see',
  ],
  [new Set(['true', 'false', ':', 'exit', 'test', '[', '[[']), 'sets an exit status without running tests'],
];

interface RunnerPart {
  runner: RunnerName;
  /** Words before the runner's own arguments (wrappers, the program, `node <bin>`, `go test`). */
  lead: Word[];
  args: Word[];
}

/** Which runner a command is, after its wrappers; null for a plain program, Why for one the server refuses. */
function identify(core: Word[]): RunnerPart | Why | null {
  const p = base(core[0]);
  const text = core.map(renderWord).join(' ');
  if (p === undefined) return { why: `runs \`${text}\`, whose program is a file pattern` };
  for (const [names, what] of FORBIDDEN) if (names.has(p)) return { why: `runs \`${text}\`, which ${what}` };
  if (p === 'node' || p === 'nodejs') {
    let i = 1;
    let test = false;
    while (i < core.length) {
      const t = str(core[i]);
      if (t === undefined || !t.startsWith('-') || t === '--') break;
      if (NODE_CODE_FLAGS.has(t)) return null;
      if (t === '--test') test = true;
      i += NODE_VALUE_FLAGS.has(t) ? 2 : 1;
    }
    if (test) return { runner: 'node:test', lead: [], args: core };
    const script = str(core[i]);
    if (script !== undefined)
      for (const [re, runner] of RUNNER_BINS)
        if (re.test(script)) return { runner, lead: core.slice(0, i + 1), args: core.slice(i + 1) };
    return null;
  }
  if (p === 'vitest') return { runner: 'vitest', lead: core.slice(0, 1), args: core.slice(1) };
  if (p === 'jest') return { runner: 'jest', lead: core.slice(0, 1), args: core.slice(1) };
  if (p === 'mocha' || p === '_mocha') return { runner: 'mocha', lead: core.slice(0, 1), args: core.slice(1) };
  if (p === 'pytest' || p === 'py.test') return { runner: 'pytest', lead: core.slice(0, 1), args: core.slice(1) };
  if (/^python(\d+(\.\d+)*)?$/.test(p)) {
    let i = 1;
    while (/^-[BuOEIsSq]+$|^-OO$/.test(str(core[i]) ?? '')) i++;
    if (str(core[i]) === '-m' && str(core[i + 1]) === 'pytest')
      return { runner: 'pytest', lead: core.slice(0, i + 2), args: core.slice(i + 2) };
    return null;
  }
  if (p === 'go' && str(core[1]) === 'test') return { runner: 'go', lead: core.slice(0, 2), args: core.slice(2) };
  if (p === 'cargo') {
    const i = str(core[1])?.startsWith('+') ? 2 : 1;
    const sub = str(core[i]);
    if (sub === 'test' || sub === 't') return { runner: 'cargo', lead: core.slice(0, i + 1), args: core.slice(i + 1) };
    if (sub === 'nextest') return { why: `runs \`${text}\`: the server cannot read the results of cargo-nextest` };
    return null;
  }
  if (OTHER_TEST_TOOLS.has(p)) return { why: `runs \`${text}\`: the server cannot read the results of ${p}` };
  return null;
}

/** Drop options ours replace: `--name`, `--name=value`, and `--name value` when it takes a value. */
function strip(args: Word[], flags: Record<string, boolean>, dotted: string[] = []): Word[] {
  const out: Word[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (typeof a !== 'string') {
      out.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a : a.slice(0, eq);
    const dot = dotted.find((d) => name.startsWith(`${d}.`));
    const takesValue = dot !== undefined ? true : flags[name];
    if (takesValue === undefined) {
      out.push(a);
      continue;
    }
    if (takesValue && eq < 0) i++;
  }
  return out;
}

/** Our reporter for node:test: one JSON line per finished test or suite, file relative to the run's directory. */
const NODE_REPORTER = [
  "import { relative } from 'node:path';",
  'export default async function* lokiReport(source) {',
  '  for await (const event of source) {',
  "    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;",
  '    const d = event.data;',
  '    yield JSON.stringify({',
  '      event: event.type.slice(5),',
  '      name: d.name,',
  '      nesting: d.nesting,',
  '      file: d.file ? relative(process.cwd(), d.file) : null,',
  "      kind: d.details?.type ?? 'test',",
  '      skip: d.skip !== undefined && d.skip !== false,',
  '      todo: d.todo !== undefined && d.todo !== false,',
  "    }) + '\\n';",
  '  }',
  "  yield JSON.stringify({ event: 'end' }) + '\\n';",
  '}',
].join('\n');
const NODE_REPORTER_URL = `data:text/javascript;base64,${Buffer.from(NODE_REPORTER).toString('base64')}`;

interface Rewritten {
  words: Word[];
  stdoutTo?: string;
  env?: Record<string, string>;
}

const VITEST_RUNS = new Set(['run', 'watch', 'dev']);
const VITEST_OTHER = new Set(['bench', 'list', 'related', 'typecheck', 'init']);

/** The runner with our reporter writing to `file`; the options it had for reporters dropped so ours decide. */
function rewrite(part: RunnerPart, file: string): Rewritten | Why {
  const { lead, args } = part;
  const text = [...lead, ...args].map(renderWord).join(' ');
  switch (part.runner) {
    case 'node:test': {
      // args is the whole node command: put the reporters right after --test, drop the ones it had.
      let end = 1;
      while (end < args.length) {
        const t = str(args[end]);
        if (t === undefined || !t.startsWith('-') || t === '--') break;
        end += NODE_VALUE_FLAGS.has(t) ? 2 : 1;
      }
      const flags = strip(args.slice(1, end), {
        '--test-reporter': true,
        '--test-reporter-destination': true,
        '--watch': false,
        '--watch-path': true,
      });
      const at = flags.indexOf('--test');
      const ours = [
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        `--test-reporter=${NODE_REPORTER_URL}`,
        `--test-reporter-destination=${file}`,
      ];
      return {
        words: [...lead, args[0]!, ...flags.slice(0, at + 1), ...ours, ...flags.slice(at + 1), ...args.slice(end)],
      };
    }
    case 'vitest': {
      let rest = args;
      const first = str(rest[0]);
      if (first !== undefined && VITEST_OTHER.has(first))
        return { why: `runs \`${text}\`, which is vitest ${first}, not a run of the test suite` };
      if (first !== undefined && VITEST_RUNS.has(first)) rest = rest.slice(1);
      if (rest.some((w) => typeof w === 'string' && (VITEST_RUNS.has(w) || VITEST_OTHER.has(w))))
        return { why: `runs \`${text}\`, where the server cannot tell which vitest command it is` };
      rest = strip(rest, { '--reporter': true, '--outputFile': true, '--watch': false, '-w': false, '--run': false }, [
        '--outputFile',
      ]);
      return {
        words: [...lead, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${file}`, ...rest],
      };
    }
    case 'jest': {
      const rest = strip(args, { '--json': false, '--outputFile': true, '--watch': false, '--watchAll': false });
      return { words: [...lead, '--json', `--outputFile=${file}`, ...rest] };
    }
    case 'mocha': {
      // Mocha >= 9.1 writes the json reporter to `output`; its option list splits on "," and "=".
      if (/[,=]/.test(file)) return { why: `the report file's path has "," or "=", which mocha cannot take` };
      const rest = strip(args, {
        '--reporter': true,
        '-R': true,
        '--reporter-option': true,
        '--reporter-options': true,
        '-O': true,
        '--watch': false,
        '-w': false,
      });
      return { words: [...lead, '--reporter', 'json', '--reporter-option', `output=${file}`, ...rest] };
    }
    case 'pytest': {
      const rest = strip(args, { '--junitxml': true, '--junit-xml': true, '--junit-prefix': true });
      return { words: [...lead, `--junitxml=${file}`, ...rest] };
    }
    case 'go': {
      const rest = strip(args, { '-json': false, '--json': false });
      return { words: [...lead, '-json', ...rest], stdoutTo: file };
    }
    case 'cargo': {
      const split = args.indexOf('--');
      const cargoArgs = strip(split < 0 ? args : args.slice(0, split), {
        '--message-format': true,
        '--no-fail-fast': false,
      });
      const testArgs = strip(split < 0 ? [] : args.slice(split + 1), {
        '--format': true,
        '-Z': true,
        '--nocapture': false,
        '--no-capture': false,
        '--show-output': false,
        '-q': false,
        '--quiet': false,
        '--logfile': true,
      }).filter((w) => !(typeof w === 'string' && /^-Z./.test(w)));
      return {
        words: [
          ...lead,
          '--no-fail-fast',
          ...cargoArgs,
          '--',
          ...testArgs,
          '-Z',
          'unstable-options',
          '--format',
          'json',
        ],
        stdoutTo: file,
        env: { RUSTC_BOOTSTRAP: '1' },
      };
    }
  }
}

/**
 * The command that runs the configured test command's runner with a machine-readable reporter writing to
 * `reportFile`, or why the server cannot plan one (the caller then counts from the output, marked unverified).
 */
export function planTestRun(command: string, manifests: { 'package.json'?: string }, reportFile: string): PlanResult {
  const expanded = expandScripts(command, manifests['package.json']);
  if (isWhy(expanded)) return { unverified: expanded.why, resolved: expanded.levels.join(' -> ') };
  const resolved = expanded.levels.join(' -> ');
  const scripts = readScripts(manifests['package.json']);
  const where = expanded.viaScripts ? 'the test script' : 'the test command';
  const unverified = (why: string): PlanResult => ({ unverified: why, resolved });

  const parts: { cmd: Cmd; prefix: Word[]; runner: RunnerPart | null }[] = [];
  for (const cmd of expanded.cmds) {
    const u = unwrap(cmd.words, isWhy(scripts) ? null : scripts);
    if (isWhy(u)) return unverified(u.why);
    const id = identify(u.core);
    if (isWhy(id)) return unverified(`${where} ${id.why}`);
    parts.push({ cmd, prefix: u.prefix, runner: id });
  }
  const runners = parts.filter((p) => p.runner !== null);
  const chain = renderChain(expanded.cmds);
  if (runners.length === 0)
    return unverified(
      `${where} runs no test runner the server knows (node --test, vitest, jest, mocha, pytest, go test, cargo test): \`${chain}\``,
    );
  if (runners.length > 1)
    return unverified(
      `${where} runs more than one runner (${runners.map((r) => `\`${renderCmd(r.cmd)}\``).join(', ')}); the server reads one report`,
    );
  const at = parts.indexOf(runners[0]!);
  if (at < parts.length - 1)
    return unverified(
      `${where} runs \`${renderCmd(parts[at + 1]!.cmd)}\` after the runner, which could change its report`,
    );

  const part = runners[0]!;
  const runner = part.runner!;
  const out = rewrite({ ...runner, lead: [...part.prefix, ...runner.lead] }, reportFile);
  if (isWhy(out)) return unverified(out.why.startsWith('runs ') ? `${where} ${out.why}` : out.why);
  const cmds = expanded.cmds.map((c, i) =>
    i === at ? { env: c.env, words: out.words, ...(out.stdoutTo === undefined ? {} : { stdoutTo: out.stdoutTo }) } : c,
  );
  const line = renderChain(cmds);
  return {
    plan: {
      runner: runner.runner,
      command: line,
      binPath: expanded.viaScripts,
      env: out.env ?? {},
      resolved,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reports

type Outcome = ReportedTest['outcome'];
interface Found {
  file: string | null;
  scope: string | null;
  name: string;
  outcome: Outcome;
  /** A failure of a whole file or package (it did not load, a hook threw), not of a test. */
  whole?: boolean;
}

type Relativize = (p: unknown) => string | null;

function relativizer(cwd: string | undefined): Relativize {
  const root = cwd === undefined ? undefined : path.posix.normalize(cwd.replace(/\\/g, '/')).replace(/\/$/, '');
  return (p) => {
    if (typeof p !== 'string' || p === '') return null;
    let f = p.replace(/\\/g, '/');
    if (f.startsWith('file://')) f = decodeURIComponent(f.slice('file://'.length));
    if (root !== undefined && path.posix.isAbsolute(f)) {
      const rel = path.posix.relative(root, f);
      if (rel !== '' && !rel.startsWith('..') && !path.posix.isAbsolute(rel)) return rel;
    }
    return f;
  };
}

function finish(runner: RunnerName, found: Found[]): TestReport {
  const seen = new Map<string, number>();
  const tests = found.map((t): ReportedTest => {
    const scope = t.scope ?? t.file;
    const plain = scope ? `${scope}::${t.name}` : t.name;
    const n = (seen.get(plain) ?? 0) + 1;
    seen.set(plain, n);
    // node:test reports a file that did not load as a test named by the file.
    const whole = t.whole === true || (t.outcome === 'failed' && t.file !== null && t.name === t.file);
    return { id: n === 1 ? plain : `${plain} (${n})`, file: t.file, name: t.name, outcome: t.outcome, whole };
  });
  const count = (o: Outcome) => tests.filter((t) => t.outcome === o).length;
  const counts: TestCounts = {
    runner,
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    total: tests.length,
  };
  return { counts, tests };
}

class ReportError extends Error {}
const fail = (msg: string): never => {
  throw new ReportError(msg);
};

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function jsonLines(text: string, strict: boolean): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      if (strict) fail(`line ${i + 1} is not JSON`);
      continue;
    }
    if (isObj(v)) out.push(v);
    else if (strict) fail(`line ${i + 1} is not a JSON object`);
  }
  return out;
}

function readNodeTest(text: string, rel: Relativize): Found[] {
  interface Item {
    name: string;
    file: string | null;
    kind: string;
    outcome: Outcome;
    children: Item[];
  }
  const events = jsonLines(text, true);
  if (events.at(-1)?.event !== 'end') fail('the report has no end marker (cut short)');
  const pending = new Map<string, Item[][]>();
  const roots: Item[] = [];
  for (const e of events.slice(0, -1)) {
    if ((e.event !== 'pass' && e.event !== 'fail') || typeof e.name !== 'string' || typeof e.nesting !== 'number')
      fail('the report has an entry that is not a test result');
    const file = rel(e.file);
    const key = file ?? '';
    const levels = pending.get(key) ?? [];
    pending.set(key, levels);
    const n = e.nesting as number;
    const item: Item = {
      name: e.name as string,
      file,
      kind: typeof e.kind === 'string' ? e.kind : 'test',
      outcome: e.skip === true || e.todo === true ? 'skipped' : e.event === 'pass' ? 'passed' : 'failed',
      children: levels[n + 1] ?? [],
    };
    levels[n + 1] = [];
    (levels[n] ??= []).push(item);
  }
  for (const levels of pending.values()) {
    if (levels.slice(1).some((l) => l && l.length > 0)) fail('the report has tests whose parent never finished');
    roots.push(...(levels[0] ?? []));
  }
  // Every test counts, those with subtests too (as node's own summary counts them); suites do not.
  const out: Found[] = [];
  const hasFailure = (it: Item): boolean => it.children.some((c) => c.outcome === 'failed' || hasFailure(c));
  const walk = (it: Item, names: string[]) => {
    const full = [...names, it.name];
    for (const c of it.children) walk(c, full);
    // Suites are not tests; a suite that failed on its own (a hook) is counted as a failure.
    if (it.kind !== 'suite' || (it.outcome === 'failed' && !hasFailure(it)))
      out.push({ file: it.file, scope: null, name: full.join(' > '), outcome: it.outcome });
  };
  for (const r of roots) walk(r, []);
  return out;
}

/** vitest and jest write the same (jest's) JSON shape. */
function readJestLike(text: string, rel: Relativize): Found[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return fail('the report is not valid JSON (cut short?)');
  }
  if (!isObj(doc) || !Array.isArray(doc.testResults) || typeof doc.numTotalTests !== 'number')
    fail('the report is not a jest-style JSON report');
  const out: Found[] = [];
  for (const file of (doc as { testResults: unknown[] }).testResults) {
    if (!isObj(file) || !Array.isArray(file.assertionResults)) return fail('a test file entry has no results');
    const name = rel(file.name);
    let failedHere = false;
    for (const a of file.assertionResults) {
      if (!isObj(a) || typeof a.title !== 'string' || typeof a.status !== 'string')
        return fail('a test entry has no title or status');
      const outcome: Outcome | undefined =
        a.status === 'passed'
          ? 'passed'
          : a.status === 'failed'
            ? 'failed'
            : ['skipped', 'pending', 'todo', 'disabled'].includes(a.status)
              ? 'skipped'
              : undefined;
      if (outcome === undefined) return fail(`a test has the status "${a.status}", which the server does not know`);
      if (outcome === 'failed') failedHere = true;
      const ancestors = Array.isArray(a.ancestorTitles) ? a.ancestorTitles.filter((t) => typeof t === 'string') : [];
      out.push({ file: name, scope: null, name: [...ancestors, a.title].join(' > '), outcome });
    }
    // A file that failed outside any test (did not load, a hook threw) is a failure of its own.
    if (file.status === 'failed' && !failedHere)
      out.push({ file: name, scope: null, name: name ?? '(test file)', outcome: 'failed', whole: true });
  }
  return out;
}

function readMocha(text: string, rel: Relativize): Found[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return fail('the report is not valid JSON (cut short?)');
  }
  if (!isObj(doc) || !isObj(doc.stats) || ![doc.passes, doc.failures, doc.pending].every(Array.isArray))
    fail('the report is not a mocha JSON report');
  const out: Found[] = [];
  const take = (list: unknown, outcome: Outcome) => {
    for (const t of list as unknown[]) {
      if (!isObj(t) || typeof t.fullTitle !== 'string') return fail('a test entry has no title');
      out.push({ file: rel(t.file), scope: null, name: t.fullTitle, outcome });
    }
  };
  const d = doc as Record<string, unknown>;
  take(d.passes, 'passed');
  take(d.failures, 'failed'); // includes hooks that failed ("before all" hook for ...)
  take(d.pending, 'skipped');
  return out;
}

declare const require: ((id: string) => unknown) | undefined;
type XmlModule = typeof import('fast-xml-parser');
let xml: XmlModule | undefined;
function loadXml(): XmlModule {
  // Loaded on first use, as yaml.ts does: only pytest reports need it.
  if (!xml)
    xml = (
      typeof require === 'function' ? require('fast-xml-parser') : createRequire(import.meta.url)('fast-xml-parser')
    ) as XmlModule;
  return xml;
}

function readPytest(text: string, rel: Relativize): Found[] {
  const { XMLParser, XMLValidator } = loadXml();
  if (text.trim() === '') fail('the report is empty');
  const valid = XMLValidator.validate(text);
  if (valid !== true) fail(`the report is not well-formed XML (${valid.err.msg}, line ${valid.err.line})`);
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '@_',
    parseAttributeValue: false,
    isArray: (name) => name === 'testsuite' || name === 'testcase',
  }).parse(text) as Record<string, unknown>;
  const suites: unknown[] = isObj(doc.testsuites)
    ? ((doc.testsuites.testsuite as unknown[] | undefined) ?? [])
    : Array.isArray(doc.testsuite)
      ? doc.testsuite
      : fail('the report is not a JUnit XML report');
  const out: Found[] = [];
  const visit = (suite: unknown) => {
    if (!isObj(suite)) return;
    for (const c of (suite.testcase as unknown[] | undefined) ?? []) {
      if (!isObj(c) || typeof c['@_name'] !== 'string') return fail('a test case has no name');
      const outcome: Outcome = 'failure' in c || 'error' in c ? 'failed' : 'skipped' in c ? 'skipped' : 'passed';
      const classname = typeof c['@_classname'] === 'string' && c['@_classname'] !== '' ? c['@_classname'] : null;
      // pytest reports a module that failed to collect as an error with no class name.
      out.push({
        file: rel(c['@_file']),
        scope: classname,
        name: c['@_name'],
        outcome,
        whole: classname === null && 'error' in c,
      });
    }
    for (const s of (suite.testsuite as unknown[] | undefined) ?? []) visit(s);
  };
  for (const s of suites) visit(s);
  return out;
}

function readGo(text: string): Found[] {
  // `go test -json`: test2json events. Every package that reports ends with a package-level pass, fail or skip.
  // Subtests (TestX/case) are tests of their own, and their parent counts too, as in go's own output.
  const events = jsonLines(text, false);
  const ended = new Map<string, string>();
  const seen = new Set<string>();
  const out: Found[] = [];
  const failedIn = new Set<string>();
  for (const e of events) {
    if (typeof e.Package !== 'string' || typeof e.Action !== 'string') continue;
    const pkg = e.Package;
    seen.add(pkg);
    const action = e.Action;
    if (action !== 'pass' && action !== 'fail' && action !== 'skip') continue;
    if (typeof e.Test === 'string' && e.Test !== '') {
      const outcome: Outcome = action === 'pass' ? 'passed' : action === 'fail' ? 'failed' : 'skipped';
      if (outcome === 'failed') failedIn.add(pkg);
      out.push({ file: null, scope: pkg, name: e.Test, outcome });
    } else {
      ended.set(pkg, action);
    }
  }
  if (seen.size === 0) fail('the report has no go test events');
  for (const pkg of seen) if (!ended.has(pkg)) fail(`package ${pkg} never finished (the report was cut short)`);
  // A package that failed with no failed test (it did not build, TestMain or init failed) is a failure.
  for (const [pkg, action] of ended)
    if (action === 'fail' && !failedIn.has(pkg))
      out.push({ file: null, scope: pkg, name: '(package)', outcome: 'failed', whole: true });
  return out;
}

function readCargo(text: string): Found[] {
  // libtest's JSON (`--format json`), one suite per test binary, each closed by a summary that must agree.
  const events = jsonLines(text, false).filter((e) => e.type === 'suite' || e.type === 'test');
  let open: { passed: number; failed: number; ignored: number; expected: number } | null = null;
  let suites = 0;
  const out: Found[] = [];
  for (const e of events) {
    if (e.type === 'suite' && e.event === 'started') {
      if (open) fail('a test binary started before the previous one finished');
      open = { passed: 0, failed: 0, ignored: 0, expected: Number(e.test_count) };
    } else if (e.type === 'suite' && (e.event === 'ok' || e.event === 'failed')) {
      if (!open) return fail('a test binary finished that never started');
      if (e.passed !== open.passed || e.failed !== open.failed || e.ignored !== open.ignored)
        fail('a test binary summary does not match its tests (forged or garbled lines?)');
      open = null;
      suites++;
    } else if (e.type === 'test' && (e.event === 'ok' || e.event === 'failed' || e.event === 'ignored')) {
      if (!open) return fail('a test result outside any test binary');
      if (typeof e.name !== 'string') return fail('a test has no name');
      const outcome: Outcome = e.event === 'ok' ? 'passed' : e.event === 'failed' ? 'failed' : 'skipped';
      if (outcome === 'passed') open.passed++;
      else if (outcome === 'failed') open.failed++;
      else open.ignored++;
      out.push({ file: null, scope: null, name: e.name, outcome });
    }
  }
  if (open) fail('a test binary never finished (the report was cut short, or the binary crashed)');
  if (suites === 0) fail('the report has no finished test binary');
  return out;
}

/**
 * Parse the report file's text; an unreadable/empty/truncated report is an error (never counts of zero).
 * `cwd`: the directory the run ran in; absolute paths under it become relative (vitest, jest and mocha report
 * absolute paths), so ids are the same in any checkout.
 */
export function readReport(runner: RunnerName, text: string, cwd?: string): TestReport | { error: string } {
  if (text.trim() === '') return { error: `the ${runner} report is empty` };
  const rel = relativizer(cwd);
  try {
    switch (runner) {
      case 'node:test':
        return finish(runner, readNodeTest(text, rel));
      case 'vitest':
      case 'jest':
        return finish(runner, readJestLike(text, rel));
      case 'mocha':
        return finish(runner, readMocha(text, rel));
      case 'pytest':
        return finish(runner, readPytest(text, rel));
      case 'go':
        return finish(runner, readGo(text));
      case 'cargo':
        return finish(runner, readCargo(text));
    }
  } catch (err) {
    if (err instanceof ReportError) return { error: `the ${runner} report: ${err.message}` };
    throw err;
  }
}
