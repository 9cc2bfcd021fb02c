/**
 * The PreToolUse guard, pure: should the host run this tool call?
 *
 * File-writing tools may not touch `.loki/` (the server is its only writer) nor leave `guard.allowedPaths`, with
 * symlinks resolved by the `realpath` the hook passes in. A shell command is read as bash reads it
 * (domain/shell.ts): every command of the line, in substitutions, subshells, `if`/`while` bodies, braces,
 * `sh -c` strings (any flags), `eval`, here-documents and here-strings fed to a shell, `find -exec`, `xargs`;
 * each command word unquoted and unescaped, its path dropped (`/bin/rm` is `rm`), assignments and wrappers
 * (env, sudo, nice, timeout, nohup, command, exec, time, ...) taken off; each path argument resolved against the
 * directory the command runs in (`cd` inside the line followed, `$PWD`, `~`, `$(pwd)`, symlinks). Then:
 *
 * - writes into `.loki/` by any command or redirection are refused (reads are fine);
 * - recursive deletes (or moves) of `/`, home, system folders, the project or a folder holding it are refused;
 * - the built-in dangerous commands (mkfs, dd to a device, force pushes, `git reset --hard`, `git clean -f`,
 *   downloads run by a shell, ...) are refused;
 * - `guard.blockedCommands` entries match wherever their command runs, whatever options stand between the words;
 * - with `guard.allowedPaths` set, the writes it can see stay inside them;
 * - staged autonomy asks before any write or command.
 *
 * What it cannot see (a seat belt, not a sandbox; docs/hosts.md has the table): interpreter one-liners
 * (`python -c`, `node -e`), scripts the agent writes and then runs, and indirection through variables, files,
 * functions or encodings. Those are the host's sandbox's to stop.
 */
import path from 'node:path';
import { parse as shellQuote } from 'shell-quote';
import {
  EVERY,
  ShellTooComplex,
  UNKNOWN,
  parseShell,
  wordValues,
  type Command,
  type Redirect,
  type Script,
  type SimpleCommand,
  type Sub,
  type Value,
  type Word,
  type WordScope,
} from './shell.js';

export type GuardDecision = { decision: 'allow' } | { decision: 'deny' | 'ask'; reason: string };

export interface GuardConfig {
  projectRoot: string;
  /** The shell's working directory, where a command starts and a relative path is read (default: the root). */
  cwd?: string | undefined;
  /** Relative to the project; empty: the whole project. */
  allowedPaths: readonly string[];
  /** Commands (words, or /regex/) refused wherever they run in a line. */
  blockedCommands: readonly string[];
  stagedAutonomy: boolean;
  /** The home directory (`~`, `$HOME`); unknown when absent. */
  home?: string | undefined;
  /**
   * The real location of an absolute path: its nearest existing ancestor with symlinks resolved, the rest as
   * written. The hook passes one that reads the file system; without it paths are taken as written.
   */
  realpath?: ((absolute: string) => string) | undefined;
}

/** Claude Code's file-writing tools and the input field holding the path. */
export const FILE_TOOLS: Readonly<Record<string, string>> = {
  Write: 'file_path',
  Edit: 'file_path',
  MultiEdit: 'file_path',
  NotebookEdit: 'notebook_path',
};

export function guardToolCall(toolName: string, input: Record<string, unknown>, cfg: GuardConfig): GuardDecision {
  const field = FILE_TOOLS[toolName];
  if (field) return guardFileWrite(input[field], cfg, field);
  if (toolName === 'Bash') {
    if (typeof input.command !== 'string')
      return { decision: 'deny', reason: `the guard cannot check this command: it is ${kindOf(input.command)}` };
    return guardCommand(input.command, cfg);
  }
  return { decision: 'allow' };
}

function kindOf(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return 'empty';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

export function guardFileWrite(file: unknown, cfg: GuardConfig, field = 'file_path'): GuardDecision {
  if (typeof file !== 'string' || file.trim() === '') {
    return {
      decision: 'deny',
      reason: `the guard cannot check this write: ${field} is ${kindOf(file)}; give the one file's path as a string`,
    };
  }
  const f = new Facts(cfg);
  const abs = path.resolve(cfg.cwd ?? cfg.projectRoot, file);
  if (f.inLoki(abs)) {
    return {
      decision: 'deny',
      reason: `${file} is inside .loki/${f.realNote(abs)}, which only the loki-mode server writes: use the loki_* tools (loki_task_update, loki_checklist_set, ...) instead`,
    };
  }
  if (!f.isAllowed(abs)) {
    return {
      decision: 'deny',
      reason: `${file}${f.realNote(abs)} is outside the allowed paths (guard.allowedPaths / LOKI_ALLOWED_PATHS: ${cfg.allowedPaths.join(', ')}); write inside them or ask the user to widen them`,
    };
  }
  if (cfg.stagedAutonomy)
    return { decision: 'ask', reason: `staged autonomy (LOKI_STAGED_AUTONOMY) asks before each write: ${file}` };
  return { decision: 'allow' };
}

export function guardCommand(command: string, cfg: GuardConfig): GuardDecision {
  try {
    const check = new Check(cfg, command);
    check.blockedText(command, command);
    forkBomb(command, command);
    check.run(parseShell(command), [path.resolve(cfg.projectRoot, cfg.cwd ?? '.')], 0, null, null);
  } catch (err) {
    if (err instanceof Refused) return { decision: 'deny', reason: err.message };
    if (err instanceof ShellTooComplex)
      return {
        decision: 'deny',
        reason: `refused: the guard cannot check \`${clip(command)}\`: it is ${err.message}; run its inner commands directly`,
      };
    throw err;
  }
  if (cfg.stagedAutonomy && command.trim())
    return {
      decision: 'ask',
      reason: `staged autonomy (LOKI_STAGED_AUTONOMY) asks before each command: ${clip(command)}`,
    };
  return { decision: 'allow' };
}

/**
 * `f(){ f|f& };f`, spanning separators the scanner splits, so read from the text of each line run as commands:
 * the definition must stand where a command starts (not inside `echo '...'`). Linear: each attempt starts only
 * after a separator.
 */
const FORK_BOMB =
  /(?:^|[\n;&|(){}])[ \t]*(:|[A-Za-z_][\w-]*)[ \t]*\(\)[ \t]*\{\s*\1[ \t]*\|[ \t]*\1[ \t]*&[ \t]*\}[ \t]*;?\s*\1(?![\w-])/;

function forkBomb(text: string, shown: string): void {
  if (FORK_BOMB.test(text)) throw new Refused(shown, 'is a fork bomb');
}

class Refused extends Error {
  constructor(shown: string, why: string) {
    super(`refused: \`${clip(shown)}\` ${why}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Paths: where a target is, and what it would reach.

/** Folders no recursive delete may take. */
const SYSTEM_DIRS = new Set(
  'bin boot dev etc home lib lib32 lib64 libx32 media mnt opt proc root run sbin srv sys tmp usr var Applications Library System Users Volumes private'
    .split(' ')
    .flatMap((d) => [`/${d}`])
    .concat(['/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share', '/var/lib', '/var/log', '/private/var']),
);
/** Block devices: writing one destroys a file system. */
const DEVICE = /^\/dev\/(?:sd|hd|vd|xvd|nvme|mmcblk|disk|rdisk|loop|md|dm-|mapper\/|sr|mem$|kmem$|port$)/;
/** Files every command may write. */
const HARMLESS = /^\/(?:dev\/(?:null|zero|stdout|stderr|stdin|tty|fd\/\d+|ptmx|pts\/\d+)|proc\/self\/fd\/\d+)$/;

interface Place {
  /** The absolute path (exact), or the known folder the path is somewhere under; null when unknown. */
  abs: string | null;
  exact: boolean;
  /** Every entry of `abs`. */
  every: boolean;
  /** A `.loki` component after an unknown part (`$X/.loki`). */
  lokiComponent: boolean;
}

function within(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent === '/' ? '/' : `${parent}/`);
}

/** The facts a decision rests on: the project, its `.loki/`, home, the allowed paths, each also as real paths. */
class Facts {
  readonly root: string;
  readonly loki: string;
  readonly realRoot: string;
  readonly realLoki: string;
  readonly home: string | null;
  readonly realHome: string | null;
  private readonly allowed: string[];
  private readonly realpathOf: (abs: string) => string;
  private readonly reals = new Map<string, string>();

  constructor(readonly cfg: GuardConfig) {
    this.realpathOf = cfg.realpath ?? ((p) => p);
    this.root = path.resolve(cfg.projectRoot);
    this.loki = path.join(this.root, '.loki');
    this.realRoot = this.real(this.root);
    this.realLoki = this.real(this.loki);
    this.home = cfg.home ? path.resolve(cfg.home) : null;
    this.realHome = this.home ? this.real(this.home) : null;
    this.allowed = cfg.allowedPaths
      .map((a) => a.trim())
      .filter((a) => a !== '')
      .map((a) => path.resolve(this.root, a));
  }

  /** Where `abs` really is; each path resolved once per check (a line may name it many times). */
  real(abs: string): string {
    let r = this.reals.get(abs);
    if (r === undefined) {
      try {
        r = path.resolve(this.realpathOf(abs));
      } catch {
        r = abs;
      }
      this.reals.set(abs, r);
    }
    return r;
  }

  /** ` (a link to <real>)` when symlinks take `abs` somewhere else. */
  realNote(abs: string): string {
    const r = this.real(abs);
    return r === abs ? '' : ` (through a symlink: ${r})`;
  }

  inLoki(abs: string): boolean {
    return within(this.loki, abs) || within(this.realLoki, this.real(abs)) || within(this.realLoki, abs);
  }

  /** `abs` holds `.loki/` (the project, or a folder above it). */
  holdsLoki(abs: string): boolean {
    return within(abs, this.loki) || within(this.real(abs), this.realLoki);
  }

  isAllowed(abs: string): boolean {
    if (this.allowed.length === 0) return true;
    const r = this.real(abs);
    return this.allowed.some((a) => within(a, abs)) && this.allowed.some((a) => within(this.real(a), r));
  }

  /** What deleting `abs` would destroy, when it must never be deleted. */
  protectedDir(abs: string): string | null {
    const r = this.real(abs);
    for (const p of abs === r ? [abs] : [abs, r]) {
      if (p === '/') return 'the whole file system';
      if (within(p, this.root) || within(p, this.realRoot))
        return p === this.root || p === this.realRoot ? `the project (${this.root})` : `${p}, which holds the project`;
      if (this.home && (within(p, this.home) || (this.realHome && within(p, this.realHome))))
        return p === this.home || p === this.realHome ? 'your home directory' : `${p}, which holds your home directory`;
      if (SYSTEM_DIRS.has(p)) return `the system folder ${p}`;
    }
    return null;
  }

  /** Folders a glob must not name: the root, the project and home with the folders above them, system folders. */
  protectedDirs(): string[] {
    const out = new Set<string>(['/', ...SYSTEM_DIRS]);
    for (const start of [this.root, this.realRoot, this.home, this.realHome]) {
      for (let p = start; p; p = path.dirname(p) === p ? null : path.dirname(p)) out.add(p);
    }
    return [...out];
  }
}

/** Segment by segment, does the glob `pattern` name `target` ('same'), something inside it, or a folder above it? */
function globReach(pattern: string, target: string): 'inside' | 'above' | 'none' {
  const ps = pattern.split('/').filter(Boolean);
  const ts = target.split('/').filter(Boolean);
  const n = Math.min(ps.length, ts.length);
  for (let i = 0; i < n; i++) if (!segmentMatches(ps[i]!, ts[i]!)) return 'none';
  return ps.length >= ts.length ? 'inside' : 'above';
}

function segmentMatches(glob: string, name: string): boolean {
  if (!/[*?[]/.test(glob)) return glob === name;
  // As bash: a leading dot is matched only by a pattern that starts with one.
  if (name.startsWith('.') && !glob.startsWith('.')) return false;
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/^[!^]/, '^');
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  try {
    return new RegExp(`^${re}$`).test(name);
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Commands: which run, where, and what they write.

type Cwd = string | null;
type Output = { kind: 'text'; text: string } | { kind: 'network' } | { kind: 'items'; items: Value[] } | null;

interface Frame {
  cwd: Cwd;
  /** `sh -c` / `eval` nesting. */
  depth: number;
  positional: readonly string[] | null;
  stdin: Output;
}

interface Ran {
  /** The command's standard output, as far as the guard knows it. */
  output: Output;
  /** A `cd`: where it went (null: somewhere unknown). */
  cd?: Cwd;
}

interface Outcome {
  /** Working directories after the script, if its last command succeeded / failed / either. */
  ok: Cwd[];
  fail: Cwd[];
  all: Cwd[];
  output: Output;
  /** It runs a download (curl, wget). */
  network: boolean;
}

interface WriteHow {
  shown: string;
  /** Reaches below the target (rm -r, chmod -R, mv, find -delete). */
  recursive: boolean;
  /** What a recursive write does to a protected folder, for the reason. */
  verb: string;
  /** Subject to guard.allowedPaths (explicit targets, not a download's implicit folder). */
  confined: boolean;
}

const NOTHING: Ran = { output: null };
const MAX_DEPTH = 8;
const MAX_CWDS = 4;
const MAX_STEPS = 20_000;
const MAX_ITEMS = 16;
/** The most words the braces of a line may expand to, all its commands together. */
const MAX_LINE_WORDS = 8192;
/** How long the guard checks one call: past it the call is refused (the host lets a hook that times out through). */
const BUDGET_MS = 2000;

/** Reserved words a command can start with; what follows is the command. */
const RESERVED = new Set(['if', 'then', 'elif', 'else', 'do', 'while', 'until', '!', '{', '}', 'coproc']);
/** Reserved words starting a line whose words are not a command (`for x in a b`, `case $x in`). */
const HEADERS = new Set(['for', 'select', 'case', 'function', 'in', 'esac', 'fi', 'done']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=/;
const WRITE_REDIRECTS = new Set(['>', '>>', '>|', '&>', '&>>', '<>', '>&']);

const SHELLS = new Set([
  'sh',
  'bash',
  'zsh',
  'dash',
  'ksh',
  'ash',
  'mksh',
  'yash',
  'posh',
  'rbash',
  'fish',
  'csh',
  'tcsh',
]);
/** Interpreters: their program comes from a flag, a file, or standard input. */
const INTERPRETERS: Readonly<Record<string, readonly string[]>> = {
  python: ['-c', '-m'],
  python3: ['-c', '-m'],
  python2: ['-c', '-m'],
  node: ['-e', '--eval', '-p', '--print'],
  nodejs: ['-e', '--eval', '-p', '--print'],
  perl: ['-e', '-E'],
  ruby: ['-e'],
  php: ['-r'],
  lua: ['-e'],
};
/** Every operand is written (created, changed, removed). */
const WRITES_OPERANDS = new Set(
  (
    'rm unlink rmdir shred srm wipe trash trash-put rimraf del touch mkdir mkfifo mknod truncate chmod chown chgrp ' +
    'chattr setfacl tee ln link rename prename gzip gunzip bzip2 bunzip2 xz unxz zstd unzstd lz4 compress uncompress ' +
    'vi vim nvim nano emacs ed ex split csplit mv sudoedit patch'
  ).split(' '),
);
/** Recursive with -r/-R/--recursive (or always: mv, rimraf). */
const RECURSIVE_FLAG: Readonly<Record<string, string>> = {
  rm: 'rR',
  chmod: 'R',
  chown: 'R',
  chgrp: 'R',
  chattr: 'R',
  setfacl: 'R',
  shred: '',
};
const PERMISSIONS = new Set(['chmod', 'chown', 'chgrp', 'chattr', 'setfacl']);

/** Wrappers: the short options (letters) and long options that take a value before the wrapped command. */
const WRAPPERS: Readonly<Record<string, { values: string; long?: readonly string[]; skip?: number }>> = {
  nice: { values: 'n', long: ['--adjustment'] },
  ionice: { values: 'cn', long: ['--class', '--classdata'] },
  nohup: { values: '' },
  setsid: { values: '' },
  unbuffer: { values: '' },
  stdbuf: { values: 'ioe', long: ['--input', '--output', '--error'] },
  timeout: { values: 'sk', long: ['--signal', '--kill-after'], skip: 1 },
  taskset: { values: '', skip: 1 },
  chrt: { values: '', skip: 1 },
  command: { values: '' },
  builtin: { values: '' },
  exec: { values: 'a' },
  doas: { values: 'uC' },
  busybox: { values: '' },
  toybox: { values: '' },
  unshare: { values: 'SGRw', long: ['--setuid', '--setgid', '--root', '--wd'] },
  fakeroot: { values: 'lsi', long: ['--lib', '--faked'] },
  chroot: { values: '', long: ['--userspec', '--groups'], skip: 1 },
  nsenter: { values: 'tSG', long: ['--target', '--setuid', '--setgid'] },
  'systemd-run': {
    values: 'pEMHu',
    long: [
      '--unit',
      '--property',
      '--description',
      '--slice',
      '--setenv',
      '--uid',
      '--gid',
      '--nice',
      '--machine',
      '--host',
    ],
  },
  firejail: { values: '' },
  strace: { values: 'oepsuEIabP', long: ['--output'] },
  ltrace: { values: 'oepsuEIabP', long: ['--output'] },
  catchsegv: { values: '' },
  caffeinate: { values: 'tw' },
  npx: { values: 'p', long: ['--package'] },
  bunx: { values: 'p', long: ['--package'] },
  runuser: { values: 'ugGlw', long: ['--user', '--group', '--supp-group', '--shell', '--whitelist-environment'] },
};

const SUDO_LONG = [
  '--user',
  '--group',
  '--chdir',
  '--close-from',
  '--host',
  '--prompt',
  '--role',
  '--type',
  '--other-user',
  '--command-timeout',
];

/** find primaries that are not tests (a find without any test acts on every file under its start). */
const FIND_NOT_TESTS = new Set(
  (
    '-depth -d -xdev -mount -follow -noleaf -daystart -ignore_readdir_race -noignore_readdir_race -warn -nowarn ' +
    '-print -print0 -ls -quit -true ( ) ! -not -a -and -o -or , -nouser -nogroup'
  ).split(' '),
);
const FIND_ONE_ARG_OPTIONS = new Set(['-maxdepth', '-mindepth', '-regextype', '-files0-from']);
const FIND_TESTS_WITH_ARG = new Set(
  (
    '-name -iname -path -ipath -wholename -iwholename -regex -iregex -lname -ilname -type -xtype -user -group -uid ' +
    '-gid -perm -size -mtime -atime -ctime -mmin -amin -cmin -newer -anewer -cnewer -used -inum -links -samefile ' +
    '-fstype -context -printf'
  ).split(' '),
);

/** One run of the guard over a command line. */
class Check {
  private readonly f: Facts;
  private readonly blocked: { entry: string; regex?: RegExp; name?: string; words?: string[] }[];
  private readonly downloads = new WeakMap<Sub, boolean>();
  /** What a substitution printed, when the guard knows it (`$(echo .loki)`). */
  private readonly printed = new WeakMap<Sub, string | null>();
  private steps = 0;
  private words = 0;
  /** Symlinks and hard links made earlier in the line: the link's path, and where it points. */
  private readonly links = new Map<string, string>();
  /** A link made earlier in the line whose place or target the guard could not know. */
  private unknownLinks = false;
  private readonly deadline = Date.now() + BUDGET_MS;

  constructor(cfg: GuardConfig, line: string) {
    this.f = new Facts(cfg);
    this.blocked = cfg.blockedCommands
      .map((b) => b.trim())
      .filter((b) => b !== '')
      .map((entry) => {
        if (entry.length > 2 && entry.startsWith('/') && entry.endsWith('/')) {
          try {
            return { entry, regex: new RegExp(entry.slice(1, -1)) };
          } catch (err) {
            // A blocked pattern that cannot be read fails closed: nothing runs until it is fixed.
            throw new Refused(
              line,
              `cannot be checked: the blocked command ${entry} is not a valid regular expression (${(err as Error).message}); fix guard.blockedCommands / LOKI_BLOCKED_COMMANDS`,
            );
          }
        }
        const words = shellQuote(entry).filter((w): w is string => typeof w === 'string');
        return { entry, name: path.basename(words[0] ?? ''), words: words.slice(1) };
      });
  }

  run(script: Script, cwds: Cwd[], depth: number, positional: readonly string[] | null, stdin: Output): Outcome {
    let ok = cwds;
    let fail = cwds;
    let all = cwds;
    let output: Output = null;
    let network = false;
    let first = true;
    for (const cmd of script.commands) {
      const from = cmd.connector === '&&' ? ok : cmd.connector === '||' ? fail : all;
      const pipeIn = first ? stdin : cmd.connector === '|' ? output : null;
      const r = this.command(cmd, from, depth, positional, pipeIn);
      const newOk = cmd.connector === '||' ? union(ok, r.ok) : r.ok;
      const newFail = cmd.connector === '&&' ? union(fail, r.fail) : r.fail;
      ok = newOk;
      fail = newFail;
      all = union(all, r.ok, r.fail);
      output = r.output;
      network ||= r.network;
      first = false;
    }
    return { ok, fail, all, output, network };
  }

  private command(
    cmd: Command,
    cwds: Cwd[],
    depth: number,
    positional: readonly string[] | null,
    pipeIn: Output,
  ): { ok: Cwd[]; fail: Cwd[]; output: Output; network: boolean } {
    this.step();
    if (cmd.kind === 'group') {
      for (const cwd of cwds) for (const r of cmd.redirects) this.redirect(r, this.scope(cwd, positional), cwd);
      const stdin = cmd.stdin ? this.textOf(cmd.stdin, cwds[0] ?? null, positional) : pipeIn;
      const r = this.run(cmd.body, cwds, depth, positional, stdin);
      return { ok: cwds, fail: cwds, output: r.output, network: r.network };
    }
    const ok: Cwd[] = [];
    let output: Output = null;
    let network = false;
    for (const cwd of cwds) {
      // Substitutions run first, each in a subshell where the command runs.
      for (const sub of subsOf(cmd)) {
        const r = this.run(sub.script, [cwd], depth, positional, null);
        this.downloads.set(sub, r.network);
        this.printed.set(sub, r.output?.kind === 'text' ? r.output.text : null);
        network ||= r.network;
      }
      const scope = this.scope(cwd, positional);
      for (const r of cmd.redirects) this.redirect(r, scope, cwd);
      const r = this.simple(cmd, cwd, depth, positional, pipeIn, scope);
      ok.push(r.cd === undefined ? cwd : r.cd);
      output = r.output;
      network ||= r.output?.kind === 'network';
    }
    return { ok, fail: cwds, output, network };
  }

  private simple(
    cmd: SimpleCommand,
    cwd: Cwd,
    depth: number,
    positional: readonly string[] | null,
    pipeIn: Output,
    scope: WordScope,
  ): Ran {
    const words = cmd.words;
    let i = 0;
    while (i < words.length && RESERVED.has(words[i]!.raw)) i++;
    if (cmd.defines || (i < words.length && HEADERS.has(words[i]!.raw))) return NOTHING;
    while (i < words.length && ASSIGNMENT.test(words[i]!.raw)) i++;
    const values = words.slice(i).flatMap((w) => this.values(w, scope));
    const stdin = cmd.stdin ? this.textOf(cmd.stdin, cwd, positional) : pipeIn;
    return this.exec(values, { cwd, depth, positional, stdin });
  }

  /** One more command followed: refused past the number of commands, or the time, the guard allows itself. */
  private step(): void {
    if (++this.steps > MAX_STEPS) throw new ShellTooComplex(`longer than the ${MAX_STEPS} commands it follows`);
    this.clock();
  }

  private clock(): void {
    if (Date.now() > this.deadline)
      throw new ShellTooComplex(`slower to check than the ${BUDGET_MS / 1000} s the guard allows itself`);
  }

  /** A word's values, counted against the line's cap on brace expansion. */
  private values(w: Word, scope: WordScope): Value[] {
    this.clock();
    const vs = wordValues(w, scope);
    if (w.braces) this.words += vs.length;
    if (this.words > MAX_LINE_WORDS)
      throw new ShellTooComplex(`a line whose braces expand to more than ${MAX_LINE_WORDS} words`);
    return vs;
  }

  private textOf(word: Word, cwd: Cwd, positional: readonly string[] | null): Output {
    return {
      kind: 'text',
      text: this.values(word, this.scope(cwd, positional))
        .map((v) => v.text)
        .join(' '),
    };
  }

  private scope(cwd: Cwd, positional: readonly string[] | null): WordScope {
    return {
      cwd,
      home: this.f.home,
      positional,
      subOutput: (sub) => {
        if (sub.kind !== '$(' && sub.kind !== '`') return null;
        const t = sub.text.trim();
        if (/^(?:builtin\s+|command\s+)?(?:\/bin\/)?pwd(?:\s+-[LP])?$/.test(t)) return cwd;
        if (/^git\s+rev-parse\s+--show-toplevel$/.test(t)) return this.f.root;
        return this.printed.get(sub) ?? null;
      },
    };
  }

  private redirect(r: Redirect, scope: WordScope, cwd: Cwd): void {
    if (!WRITE_REDIRECTS.has(r.op)) return;
    for (const v of this.values(r.target, scope)) {
      if (r.op === '>&' && /^(?:\d+|-)$/.test(v.text)) continue;
      this.write(v, cwd, { shown: `${r.op} ${v.text}`, recursive: false, verb: 'overwrites', confined: true });
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // One command, its words known: wrappers taken off, then the command's own rules.

  private exec(values: Value[], fr: Frame): Ran {
    if (values.length === 0) return NOTHING;
    this.step();
    const shown = show(values);
    this.blockedText(shown, shown);
    const first = values[0]!.text;
    // An unknown command word (`$CMD args`) is indirection the guard cannot follow.
    if (first === '' || first.includes(UNKNOWN) || first.includes(EVERY)) return NOTHING;
    const name = path.basename(first);
    const args = values.slice(1);
    this.blockedCommand(name, args, shown);
    switch (name) {
      case 'cd':
      case 'pushd':
        return this.cd(args, fr);
      case 'popd':
        return { output: null, cd: null };
      case 'env':
        return this.env(args, fr);
      case 'sudo':
        return this.sudo(args, fr, shown);
      case 'time':
        return this.time(args, fr, shown);
      case 'xargs':
        return this.xargs(args, fr);
      case 'find':
        return this.find(args, fr, shown);
      case 'eval':
        return this.runText(
          args.map((v) => v.text).join(' '),
          args.flatMap((v) => v.subs),
          fr,
          fr.positional,
          shown,
        );
      case 'trap':
        return args[0] ? this.runText(args[0].text, args[0].subs, fr, fr.positional, shown) : NOTHING;
      case 'alias':
        for (const a of args) {
          const m = /^[^=]+=([\s\S]*)$/.exec(a.text);
          if (m) this.runText(m[1]!, a.subs, fr, null, shown);
        }
        return NOTHING;
      case 'source':
      case '.':
        if (args[0] && this.fromDownload(args[0])) throw new Refused(shown, 'runs a download as a script');
        return NOTHING;
      case 'su':
      case 'flock':
      case 'watch':
      case 'script':
        return this.commandString(name, args, fr, shown);
      case 'git':
        return this.git(args, fr, shown);
      case 'echo':
        return { output: { kind: 'text', text: echoed(args) } };
      case 'printf':
        return { output: { kind: 'text', text: printed(args) } };
      case 'cat':
        return { output: operandValues(args).every((v) => v.text === '-') ? fr.stdin : null };
      case 'tee':
        this.writer(name, args, fr, shown);
        return { output: fr.stdin };
      case 'ls':
        return this.ls(args, fr);
      case 'curl':
      case 'wget':
        this.download(name, args, fr, shown);
        return { output: { kind: 'network' } };
      case 'kill':
        // `-1` as the process (after a signal or `--`; first, it is the signal): every process the user can reach.
        if (args.slice(1).some((v) => v.text === '-1') && !args.some((v) => /^-[lL]$/.test(v.text)))
          throw new Refused(shown, 'kills every process you own');
        return NOTHING;
      case 'shutdown':
      case 'reboot':
      case 'halt':
      case 'poweroff':
        throw new Refused(shown, 'stops the machine');
      case 'systemctl':
        if (args.some((v) => /^(?:poweroff|reboot|halt|kexec|emergency|rescue|suspend|hibernate)$/.test(v.text)))
          throw new Refused(shown, 'stops the machine');
        return NOTHING;
      case 'init':
      case 'telinit':
        if (args.some((v) => /^[06]$/.test(v.text))) throw new Refused(shown, 'stops the machine');
        return NOTHING;
      case 'dd':
        for (const v of args) {
          const m = /^of=(.*)$/s.exec(v.text);
          if (m)
            this.write({ ...v, text: m[1]! }, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
        }
        return { output: null };
    }
    if (name === 'npm' || name === 'pnpm' || name === 'yarn' || name === 'bun') {
      const at = args.findIndex((v) => !v.text.startsWith('-'));
      const sub = args[at]?.text;
      if (sub === 'exec' || sub === 'dlx' || sub === 'x') {
        const rest = args.slice(at + 1);
        const c = optionValue(rest, '-c', '--call');
        if (c) return this.runText(c.text, c.subs, fr, null, shown);
        return this.exec(rest.slice(skipOptions(rest, 0, 'p', ['--package'])), fr);
      }
    }
    if (name === 'parallel') return this.parallel(args, fr);
    if (/^mkfs(?:\.\w+)?$|^mke2fs$|^mkswap$|^wipefs$|^newfs/.test(name))
      throw new Refused(shown, 'formats a file system');
    if (SHELLS.has(name)) return this.shell(args, fr, shown);
    if (name in INTERPRETERS) return this.interpreter(name, args, fr, shown);
    const wrapper = WRAPPERS[name];
    if (wrapper) {
      if ((name === 'ionice' || name === 'taskset' || name === 'chrt') && args.some((v) => v.text === '-p'))
        return NOTHING;
      if (name === 'command' && args.some((v) => /^-[a-zA-Z]*[vV]/.test(v.text))) return NOTHING;
      if (name === 'npx' || name === 'bunx') {
        const c = optionValue(args, '-c', '--call');
        if (c) return this.runText(c.text, c.subs, fr, null, shown);
      }
      const start = skipOptions(args, 0, wrapper.values, wrapper.long ?? []) + (wrapper.skip ?? 0);
      if (name === 'strace' || name === 'ltrace') {
        const out = optionValue(args, '-o', '--output');
        if (out) this.write(out, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
      }
      return this.exec(args.slice(start), fr);
    }
    if (WRITES_OPERANDS.has(name) || name in WRITERS) this.writer(name, args, fr, shown);
    if (name === 'ln' || name === 'link') this.link(args, fr);
    return NOTHING;
  }

  /** `ln [-s] TARGET [LINK]`, `ln TARGET... DIR`: remembered, so a later path through the link is followed. */
  private link(args: Value[], fr: Frame): void {
    const ops = operandValues(args);
    const symbolic = args.some((v) => /^-[a-zA-Z]*s/.test(v.text) || v.text === '--symbolic');
    const target = ops[0];
    const at = ops.length > 1 ? ops[ops.length - 1]! : null;
    const linkPlace = place(at ? at.text : path.basename(target?.text ?? ''), fr.cwd);
    if (!target || !linkPlace.exact || !linkPlace.abs || ops.length > 2) {
      this.unknownLinks = true;
      return;
    }
    const from = symbolic && !target.text.startsWith('/') ? path.dirname(linkPlace.abs) : fr.cwd;
    const targetPlace = place(target.text, from);
    if (!targetPlace.exact || !targetPlace.abs) {
      this.unknownLinks = true;
      return;
    }
    // The link itself, or (when LINK is a folder) the link inside it.
    this.links.set(linkPlace.abs, targetPlace.abs);
    this.links.set(path.join(linkPlace.abs, path.basename(targetPlace.abs)), targetPlace.abs);
  }

  private cd(args: Value[], fr: Frame): Ran {
    const target = args.find((v) => !/^-[LPe@]+$/.test(v.text) && v.text !== '--');
    if (!target) return { output: null, cd: this.f.home };
    if (target.text === '-' || /^[+-]\d+$/.test(target.text)) return { output: null, cd: null };
    const p = place(target.text, fr.cwd);
    return { output: null, cd: p.exact ? p.abs : null };
  }

  /** `env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=value]... command`. */
  private env(args: Value[], fr: Frame): Ran {
    let cwd = fr.cwd;
    let i = 0;
    while (i < args.length) {
      const a = args[i]!.text;
      if (a === '--') {
        i++;
        break;
      }
      const chdir = /^(?:-C|--chdir)(?:=?(.+))?$/s.exec(a);
      if (chdir) {
        const dir = chdir[1] ?? args[++i]?.text;
        const p = dir === undefined ? null : place(dir, cwd);
        cwd = p?.exact ? p.abs : null;
        i++;
        continue;
      }
      const split = /^(?:-S|--split-string)(?:=?(.+))?$/s.exec(a);
      if (split) {
        const text = split[1] ?? args[++i]?.text ?? '';
        const words = shellQuote(text).filter((w): w is string => typeof w === 'string');
        const rest = args.slice(i + 1);
        return this.exec([...words.map((t) => ({ text: t, glob: false, subs: [] })), ...rest], { ...fr, cwd });
      }
      if (/^(?:-u|--unset)$/.test(a)) {
        i += 2;
        continue;
      }
      if (a.startsWith('-') && a.length > 1) {
        i++;
        continue;
      }
      if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) {
        i++;
        continue;
      }
      break;
    }
    while (i < args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(args[i]!.text)) i++;
    return this.exec(args.slice(i), { ...fr, cwd });
  }

  /** `sudo [options] [NAME=value]... command`, `sudo -e FILE` (sudoedit), `-D DIR` the folder it runs in. */
  private sudo(args: Value[], fr: Frame, shown: string): Ran {
    let i = skipOptions(args, 0, 'ugCDhpUrtT', SUDO_LONG);
    const options = args.slice(0, i);
    const dir = optionValue(options, '-D', '--chdir');
    const p = dir ? place(dir.text, fr.cwd) : null;
    const cwd = p ? (p.exact ? p.abs : null) : fr.cwd;
    while (i < args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(args[i]!.text)) i++;
    const rest = args.slice(i);
    if (options.some((v) => v.text === '-e' || v.text === '--edit')) {
      this.writer('sudoedit', rest, { ...fr, cwd }, shown);
      return NOTHING;
    }
    return this.exec(rest, { ...fr, cwd });
  }

  /** `time [-p] [-o FILE] command`: the shell keyword and GNU time (whose -o writes a file). */
  private time(args: Value[], fr: Frame, shown: string): Ran {
    const out = optionValue(args, '-o', '--output');
    if (out) this.write(out, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
    return this.exec(args.slice(skipOptions(args, 0, 'fo', ['--format', '--output'])), fr);
  }

  /** `sh -c 'script' [name args]` with any flags (`-lc`, `-e -c`, `-o pipefail -c`), a script file, or stdin. */
  private shell(args: Value[], fr: Frame, shown: string): Ran {
    let hasC = false;
    let fromStdin = false;
    let i = 0;
    while (i < args.length) {
      const a = args[i]!.text;
      if (a === '--' || a === '-') {
        i++;
        break;
      }
      if (/^--(?:rcfile|init-file)$/.test(a)) {
        i += 2;
        continue;
      }
      if (a === '--command') {
        hasC = true;
        i++;
        continue;
      }
      if (a.startsWith('--')) {
        i++;
        continue;
      }
      if (/^[-+][A-Za-z]+$/.test(a)) {
        if (a[0] === '-' && a.includes('c')) hasC = true;
        if (a[0] === '-' && a.includes('s')) fromStdin = true;
        const takes = (a.match(/[oO]/g) ?? []).length;
        i += 1 + takes;
        continue;
      }
      break;
    }
    const operand = args[i];
    if (hasC) {
      if (!operand) return NOTHING;
      return this.runText(
        operand.text,
        operand.subs,
        fr,
        args.slice(i + 1).map((v) => v.text),
        shown,
      );
    }
    if (operand && !fromStdin) {
      // A script file: its text is not the guard's to read (a limit), but a download run as one is refused.
      if (this.fromDownload(operand)) throw new Refused(shown, 'runs a download as a script');
      return NOTHING;
    }
    return this.stdinProgram(fr, shown, [shown.split(' ')[0] ?? '', ...args.slice(i).map((v) => v.text)]);
  }

  /**
   * A shell (positional: its `$0`, `$1`, ...) or an interpreter (null) reading its program from standard input:
   * a download is refused; a shell's known text (a here-document, `echo ... |`) is checked as a command line.
   */
  private stdinProgram(fr: Frame, shown: string, positional: readonly string[] | null): Ran {
    if (fr.stdin?.kind === 'network') throw new Refused(shown, 'pipes a download straight into a shell or interpreter');
    if (fr.stdin?.kind === 'text' && positional) return this.runText(fr.stdin.text, [], fr, positional, shown);
    return NOTHING;
  }

  /** python, node, perl, ...: their program from a flag (-c, -e), a file, or, with neither, standard input. */
  private interpreter(name: string, args: Value[], fr: Frame, shown: string): Ran {
    const inline = INTERPRETERS[name]!;
    const flag = args.findIndex((v) =>
      inline.some((f) => v.text === f || (!f.startsWith('--') && v.text.startsWith(f))),
    );
    const script = args.find((v) => !v.text.startsWith('-'));
    const program = flag >= 0 ? [args[flag]!, args[flag + 1]] : script && script.text !== '-' ? [script] : null;
    if (program) {
      if (program.some((v) => v && this.fromDownload(v))) throw new Refused(shown, 'runs a download as a program');
    } else this.stdinProgram(fr, shown, null);
    if ((name === 'perl' || name === 'ruby') && args.some((v) => /^-[a-zA-Z]*i/.test(v.text)))
      this.writer('sed', args, fr, shown);
    return NOTHING;
  }

  /** Commands taking a shell command string: `su -c`, `flock -c`, `watch`, `script -c`. */
  private commandString(name: string, args: Value[], fr: Frame, shown: string): Ran {
    const c = optionValue(args, '-c', '--command');
    if (c) return this.runText(c.text, c.subs, fr, null, shown);
    if (name === 'watch') {
      const start = skipOptions(args, 0, 'nqd', ['--interval', '--differences']);
      const rest = args.slice(start);
      if (args.some((v) => v.text === '-x' || v.text === '--exec')) return this.exec(rest, fr);
      return this.runText(
        rest.map((v) => v.text).join(' '),
        rest.flatMap((v) => v.subs),
        fr,
        null,
        shown,
      );
    }
    if (name === 'flock') {
      const start = skipOptions(args, 0, 'wE', ['--timeout', '--conflict-exit-code']);
      const lock = args[start];
      if (lock && !/^\d+$/.test(lock.text))
        this.write(lock, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
      return this.exec(args.slice(start + 1), fr);
    }
    if (name === 'script') {
      const file = args.slice(
        skipOptions(args, 0, 'cEIOBT', ['--command', '--log-in', '--log-out', '--log-io', '--log-timing']),
      )[0];
      if (file) this.write(file, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
    }
    return NOTHING;
  }

  /** A command line in a string (`sh -c`, `eval`, a here-document fed to a shell), read and checked as one. */
  private runText(
    text: string,
    subs: readonly Sub[],
    fr: Frame,
    positional: readonly string[] | null,
    shown: string,
  ): Ran {
    if (subs.some((s) => this.downloads.get(s))) throw new Refused(shown, 'runs a download as a command');
    if (fr.depth >= MAX_DEPTH) throw new ShellTooComplex(`nested more than ${MAX_DEPTH} shells or evals deep`);
    forkBomb(text, shown);
    const r = this.run(parseShell(text), [fr.cwd], fr.depth + 1, positional, null);
    return { output: r.output };
  }

  private fromDownload(v: Value): boolean {
    return v.subs.some((s) => this.downloads.get(s));
  }

  /** `xargs [options] [command [args]]`: the command gets what the one before the pipe printed. */
  private xargs(args: Value[], fr: Frame): Ran {
    let replace: string | null = null;
    let i = 0;
    while (i < args.length) {
      const a = args[i]!.text;
      if (a === '--') {
        i++;
        break;
      }
      if (!a.startsWith('-') || a.length < 2) break;
      const m = /^-I(.*)$/s.exec(a);
      if (m) {
        replace = m[1] || args[i + 1]?.text || '{}';
        i += m[1] ? 1 : 2;
        continue;
      }
      const ir = /^(?:-i|--replace)(?:=?(.*))?$/s.exec(a);
      if (ir) {
        replace = ir[1] || '{}';
        i++;
        continue;
      }
      if (
        /^-[adELnPs]$/.test(a) ||
        /^--(?:arg-file|delimiter|eof|max-lines|max-args|max-procs|max-chars|process-slot-var)$/.test(a)
      )
        i += 2;
      else i++;
    }
    const inner = args.slice(i);
    const command = inner.length > 0 ? inner : [{ text: 'echo', glob: false, subs: [] }];
    const items = itemsOf(fr.stdin).slice(0, MAX_ITEMS);
    if (replace === null) return this.exec([...command, ...items], { ...fr, stdin: null });
    let last: Ran = NOTHING;
    for (const item of items)
      last = this.exec(
        command.map((v) => ({ ...v, text: v.text.split(replace).join(item.text) })),
        { ...fr, stdin: null },
      );
    return last;
  }

  /** `parallel [options] command ::: args...` (each arg appended, or put for `{}`), or items from standard input. */
  private parallel(args: Value[], fr: Frame): Ran {
    const start = skipOptions(args, 0, 'jSIEnNLsdCXa', [
      '--jobs',
      '--sshlogin',
      '--delimiter',
      '--colsep',
      '--joblog',
      '--results',
      '--tmpdir',
      '--timeout',
      '--retries',
      '--arg-file',
    ]);
    const sep = args.findIndex((v, k) => k >= start && /^:::+$/.test(v.text));
    const command = args.slice(start, sep < 0 ? undefined : sep);
    const items = (sep < 0 ? itemsOf(fr.stdin) : args.slice(sep + 1).filter((v) => !/^:::+$/.test(v.text))).slice(
      0,
      MAX_ITEMS,
    );
    if (command.length === 0) {
      for (const item of items) this.runText(item.text, item.subs, fr, null, show([item]));
      return NOTHING;
    }
    for (const item of items) {
      const withItem = command.some((v) => v.text.includes('{}'))
        ? command.map((v) => ({ ...v, text: v.text.split('{}').join(item.text) }))
        : [...command, item];
      this.exec(withItem, { ...fr, stdin: null });
    }
    return NOTHING;
  }

  /** `find start... expression`: `-delete`, `-exec` and `-fprint` act on what it finds. */
  private find(args: Value[], fr: Frame, shown: string): Ran {
    let i = 0;
    while (i < args.length && /^-[HLP]$|^-D$|^-O\d*$/.test(args[i]!.text)) i += args[i]!.text === '-D' ? 2 : 1;
    const starts: Value[] = [];
    while (i < args.length && !/^[-(!)]/.test(args[i]!.text)) starts.push(args[i++]!);
    if (starts.length === 0) starts.push({ text: '.', glob: false, subs: [] });
    let tests = false;
    let below = false;
    const actions: ({ kind: 'delete' } | { kind: 'exec'; command: Value[] })[] = [];
    while (i < args.length) {
      const a = args[i]!.text;
      if (/^-(?:exec|execdir|ok|okdir)$/.test(a)) {
        const end = args.findIndex((v, k) => k > i && (v.text === ';' || v.text === '+'));
        actions.push({ kind: 'exec', command: args.slice(i + 1, end < 0 ? undefined : end) });
        i = end < 0 ? args.length : end + 1;
      } else if (a === '-delete') {
        actions.push({ kind: 'delete' });
        i++;
      } else if (/^-(?:fprint|fprint0|fls|fprintf)$/.test(a)) {
        const file = args[i + 1];
        if (file) this.write(file, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
        i += a === '-fprintf' ? 3 : 2;
      } else if (FIND_ONE_ARG_OPTIONS.has(a)) {
        if (a === '-mindepth' && Number(args[i + 1]?.text) >= 1) below = true;
        i += 2;
      } else if (FIND_NOT_TESTS.has(a)) i++;
      else {
        tests = true;
        i += FIND_TESTS_WITH_ARG.has(a) || a.startsWith('-newer') ? 2 : 1;
      }
    }
    // With no test, find acts on everything under its start (the start itself unless -mindepth 1), `.loki/` and
    // every file in it too when the start holds it (or may: a start the guard cannot place).
    const items = starts.flatMap((s) => {
      const item = { ...s, glob: false, text: tests ? `${s.text}/${UNKNOWN}` : below ? `${s.text}/${EVERY}` : s.text };
      if (tests) return [item];
      const p = place(s.text, fr.cwd);
      if (p.exact && p.abs && !this.f.holdsLoki(p.abs)) return [item];
      const loki = p.exact && p.abs ? this.f.loki : `${s.text}/.loki`;
      return [item, { ...item, text: loki }, { ...item, text: `${loki}/${EVERY}` }];
    });
    for (const action of actions) {
      for (const item of items) {
        if (action.kind === 'delete')
          this.write(item, fr.cwd, { shown, recursive: true, verb: 'deletes', confined: true });
        else
          this.exec(
            action.command.map((v) => ({ ...v, text: v.text.split('{}').join(item.text) })),
            { ...fr, stdin: null },
          );
      }
    }
    return { output: { kind: 'items', items } };
  }

  private ls(args: Value[], fr: Frame): Ran {
    const dirOnly = args.some((v) => /^-[a-zA-Z]*d/.test(v.text) || v.text === '--directory');
    const ops = args.filter((v) => !v.text.startsWith('-'));
    const listed = ops.length > 0 ? ops : [{ text: fr.cwd ?? UNKNOWN, glob: false, subs: [] }];
    return {
      output: {
        kind: 'items',
        items: listed.map((v) => (dirOnly || v.glob ? v : { ...v, text: `${v.text}/${EVERY}` })),
      },
    };
  }

  private git(args: Value[], fr: Frame, shown: string): Ran {
    let cwd = fr.cwd;
    const configs: string[] = [];
    let i = 0;
    while (i < args.length) {
      const a = args[i]!.text;
      if (a === '-C') {
        const p = args[i + 1] ? place(args[i + 1]!.text, cwd) : null;
        cwd = p?.exact ? p.abs : null;
        i += 2;
      } else if (a === '-c') {
        configs.push(args[i + 1]?.text ?? '');
        i += 2;
      } else if (/^--(?:git-dir|work-tree|namespace|exec-path|config-env|super-prefix)$/.test(a)) i += 2;
      else if (a.startsWith('-')) i++;
      else break;
    }
    for (const c of configs) this.gitConfig(c, fr, shown);
    const sub = args[i]?.text;
    const rest = args.slice(i + 1);
    const texts = rest.map((v) => v.text);
    const short = (letter: string) => texts.some((t) => new RegExp(`^-[a-zA-Z]*${letter}`).test(t));
    if (
      sub === 'push' &&
      (texts.some((t) => /^--force(?:-with-lease|-if-includes)?(?:=|$)/.test(t) || /^\+/.test(t)) || short('f'))
    )
      throw new Refused(shown, 'force-pushes, which can destroy shared history');
    if (sub === 'reset' && texts.includes('--hard'))
      throw new Refused(shown, 'discards work irrecoverably (use loki_checkpoint_create / loki_rollback instead)');
    if (sub === 'clean') {
      const dry = texts.includes('--dry-run') || short('n');
      const force =
        texts.includes('--force') ||
        short('f') ||
        configs.some((c) => /^clean\.requireforce=(?:false|no|off|0)$/i.test(c));
      if (force && !dry)
        throw new Refused(
          shown,
          `discards untracked work irrecoverably${short('x') || short('X') ? ' and, with -x, deletes .loki/' : ''} (use loki_checkpoint_create / loki_rollback instead; git clean -n shows what it would remove)`,
        );
    }
    if (sub === 'stash' && (texts.includes('--all') || short('a')))
      throw new Refused(shown, 'stashes away ignored files, .loki/ among them, which the loki-mode server is using');
    if (sub === 'clone' || sub === 'init') {
      const ops = rest.filter((v) => !v.text.startsWith('-'));
      const dir = sub === 'clone' ? ops[1] : ops[0];
      const target = dir ?? { text: '.', glob: false, subs: [] };
      this.write(target, cwd, { shown, recursive: false, verb: 'overwrites', confined: dir !== undefined });
    }
    return NOTHING;
  }

  /** `git -c key=value`: a value git runs as a command is checked as one; a hooks folder the guard cannot read is refused. */
  private gitConfig(setting: string, fr: Frame, shown: string): void {
    const eq = setting.indexOf('=');
    if (eq < 0) return;
    const key = setting.slice(0, eq).toLowerCase();
    const value = setting.slice(eq + 1);
    if (/^alias\./.test(key)) {
      if (value.startsWith('!')) this.runText(value.slice(1), [], fr, null, shown);
      return;
    }
    if (/(?:^|\.)hookspath$/.test(key)) {
      if (value !== '/dev/null')
        throw new Refused(
          shown,
          `runs git hooks from ${value}, which the guard cannot read (core.hooksPath=/dev/null is fine)`,
        );
      return;
    }
    if (
      /^(?:core\.(?:pager|editor|sshcommand|askpass|fsmonitor)|sequence\.editor|diff\.external|gpg\.(?:\w+\.)?program|credential\.(?:.*\.)?helper|uploadpack\.packobjectshook|interactive\.difffilter|pager\..*|.*\.(?:textconv|command|driver|clean|smudge|process|tool|cmd))$/.test(
        key,
      ) &&
      !/^(?:true|false|yes|no|on|off|[01])$/i.test(value)
    )
      this.runText(value.replace(/^!/, ''), [], fr, null, shown);
  }

  private download(name: string, args: Value[], fr: Frame, shown: string): void {
    const how = { shown, recursive: false, verb: 'overwrites', confined: true };
    if (name === 'curl') {
      for (const [short, long] of [
        ['-o', '--output'],
        ['-D', '--dump-header'],
        ['-c', '--cookie-jar'],
        ['', '--trace'],
        ['', '--trace-ascii'],
        ['', '--stderr'],
        ['', '--libcurl'],
      ] as const) {
        const v = optionValue(args, short, long);
        if (v && v.text !== '-') this.write(v, fr.cwd, how);
      }
      if (args.some((v) => /^-[a-zA-Z]*[OJ]/.test(v.text) || /^--remote-name/.test(v.text))) {
        const dir = optionValue(args, '', '--output-dir') ?? { text: '.', glob: false, subs: [] };
        this.write({ ...dir, text: `${dir.text}/${UNKNOWN}` }, fr.cwd, { ...how, confined: false });
      }
      return;
    }
    const doc = optionValue(args, '-O', '--output-document');
    if (doc && doc.text !== '-') this.write(doc, fr.cwd, how);
    for (const [short, long] of [
      ['-o', '--output-file'],
      ['-a', '--append-output'],
    ] as const) {
      const v = optionValue(args, short, long);
      if (v) this.write(v, fr.cwd, how);
    }
    if (!doc) {
      const dir = optionValue(args, '-P', '--directory-prefix') ?? { text: '.', glob: false, subs: [] };
      this.write({ ...dir, text: `${dir.text}/${UNKNOWN}` }, fr.cwd, { ...how, confined: false });
    }
  }

  /** The targets a writing command names, each checked. */
  private writer(name: string, args: Value[], fr: Frame, shown: string): void {
    if (name === 'mv') {
      // The sources are moved away (all they hold); the destination only receives them (`mv a.txt .`).
      const into = destination(args);
      const t = optionValue(args, '-t', '--target-directory');
      const ops = operandValues(args);
      const sources = t ? ops.filter((v) => v !== t) : ops.slice(0, -1);
      for (const v of sources) this.write(v, fr.cwd, { shown, recursive: true, verb: 'moves away', confined: true });
      for (const v of into) this.write(v, fr.cwd, { shown, recursive: false, verb: 'overwrites', confined: true });
      return;
    }
    const spec = WRITERS[name];
    const targets = spec ? spec(args) : { targets: operandValues(args), implicit: false };
    const letters = RECURSIVE_FLAG[name];
    const recursive =
      targets.recursive ??
      (name === 'mv' ||
        name === 'rimraf' ||
        (letters !== undefined &&
          letters !== '' &&
          args.some((v) => v.text === '--recursive' || new RegExp(`^-[a-zA-Z]*[${letters}]`).test(v.text))));
    const verb =
      name === 'mv' ? 'moves away' : PERMISSIONS.has(name) ? 'changes the owner or permissions of' : 'deletes';
    for (const t of targets.targets) this.write(t, fr.cwd, { shown, recursive, verb, confined: true });
    if (targets.implicit)
      this.write({ text: `./${UNKNOWN}`, glob: false, subs: [] }, fr.cwd, {
        shown,
        recursive: false,
        verb: 'overwrites',
        confined: false,
      });
  }

  /** One write: refused into `.loki/`, over a protected folder (recursive), to a device, outside the allowed paths. */
  private write(v: Value, cwd: Cwd, how: WriteHow, hops = 0): void {
    this.clock();
    // In a folder the guard cannot know (after `cd -`, `popd`, `cd "$X"`), a relative path may be the project's.
    if (cwd === null && !v.text.startsWith('/')) this.write(v, this.f.root, { ...how, confined: false });
    const p = place(v.text, cwd);
    // Through a link made earlier in the line (`ln -s . L; rm -rf L/.loki`): where the link points, too.
    if (p.exact && p.abs && hops < MAX_DEPTH) {
      for (const [link, target] of this.links) {
        if (within(link, p.abs) && p.abs !== link)
          this.write({ ...v, text: target + p.abs.slice(link.length) }, cwd, how, hops + 1);
      }
    }
    if (p.exact && p.abs && !v.glob) {
      if (HARMLESS.test(p.abs)) return;
      if (DEVICE.test(p.abs)) throw new Refused(how.shown, `overwrites a device (${p.abs})`);
    }
    if (how.recursive) {
      const what = this.sweeps(p, v.glob);
      if (what) throw new Refused(how.shown, `${how.verb} ${what}`);
    }
    const loki = this.reachesLoki(p, v.glob, how.recursive);
    if (loki)
      throw new Refused(
        how.shown,
        `changes .loki/ (${loki}), which only the loki-mode server writes: use the loki_* tools (loki_task_update, loki_checklist_set, ...) instead; reading it (cat, ls, sqlite3 -readonly) is fine`,
      );
    if (how.confined && p.abs && !v.glob && !this.f.isAllowed(p.abs)) {
      throw new Refused(
        how.shown,
        `writes ${p.exact ? p.abs : `under ${p.abs}`}${p.exact ? this.f.realNote(p.abs) : ''}, outside the allowed paths (guard.allowedPaths / LOKI_ALLOWED_PATHS: ${this.f.cfg.allowedPaths.join(', ')}); write inside them or ask the user to widen them`,
      );
    }
  }

  /** What a recursive write of this place would take that it must not (null: nothing protected). */
  private sweeps(p: Place, glob: boolean): string | null {
    if (!p.abs) return null;
    if (p.exact && !glob) return this.f.protectedDir(p.abs);
    if (p.exact && glob) {
      // `*` of a protected folder, or a pattern naming one (`/u*`).
      const dir = path.dirname(p.abs);
      const every = /^\*+$/.test(path.basename(p.abs)) && !/[*?[]/.test(dir) ? this.f.protectedDir(dir) : null;
      if (every) return `every file in ${every}`;
      const depth = p.abs.split('/').filter(Boolean).length;
      for (const d of this.f.protectedDirs()) {
        if (globReach(p.abs, d) === 'inside' && depth === d.split('/').filter(Boolean).length)
          return this.f.protectedDir(d);
      }
      return null;
    }
    const what = p.every ? this.f.protectedDir(p.abs) : null;
    return what ? `every file in ${what}` : null;
  }

  /** Where this place reaches into `.loki/` (shown in the reason), or null. */
  private reachesLoki(p: Place, glob: boolean, recursive: boolean): string | null {
    const rel = (abs: string) => path.relative(this.f.root, abs) || '.';
    // After a link the guard could not follow, a folder named .loki may be the project's.
    if (p.lokiComponent && this.unknownLinks)
      return 'a path through a folder named .loki, after a link made in the line';
    if (p.exact && p.abs && !glob) {
      if (this.f.inLoki(p.abs)) return `${rel(p.abs)}${this.f.realNote(p.abs)}`;
      if (recursive && this.f.holdsLoki(p.abs)) return `${rel(p.abs)} holds it`;
      return null;
    }
    if (p.exact && p.abs && glob) {
      for (const target of [this.f.loki, this.f.realLoki]) {
        const reach = globReach(p.abs, target);
        if (reach === 'inside' || (recursive && reach === 'above')) return `${p.abs} matches it`;
      }
      return null;
    }
    // Somewhere under a known folder: inside .loki/, or every entry of a folder holding it.
    if (p.abs && this.f.inLoki(p.abs)) return `under ${rel(p.abs)}`;
    if (p.abs && p.every && this.f.holdsLoki(p.abs) && (recursive || path.dirname(this.f.loki) === p.abs))
      return `every entry of ${rel(p.abs)}`;
    // `"$DIR"/.loki/...`: where is unknown, but a .loki component is reason enough.
    if (p.lokiComponent) return 'a path through a folder named .loki';
    return null;
  }

  // -------------------------------------------------------------------------------------------------------
  // guard.blockedCommands

  /** /regex/ entries, against a line or a command as the guard normalised it. */
  blockedText(text: string, shown: string): void {
    for (const b of this.blocked) {
      if (b.regex?.test(text))
        throw new Refused(
          shown,
          `matches the blocked command "${b.entry}" (guard.blockedCommands / LOKI_BLOCKED_COMMANDS)`,
        );
    }
  }

  /**
   * Word entries: the command, then its subcommand words in order, options (and an option's value) allowed
   * between them but no other word (`git push` is not `git log --grep push`); an option word of the entry
   * anywhere after the words before it, short options in any order or spelling (`-rf`: `-Rf`, `-r -f`,
   * `--recursive --force`).
   */
  private blockedCommand(name: string, args: Value[], shown: string): void {
    const texts = args.map((v) => v.text);
    for (const b of this.blocked) {
      if (!b.words || b.name !== name) continue;
      let k = 0;
      let matched = true;
      for (const want of b.words) {
        if (/^-[a-zA-Z0-9]+$/.test(want)) {
          const have = shortOptions(texts.slice(k));
          if (![...want.slice(1)].every((l) => have.has(l === 'R' ? 'r' : l))) matched = false;
        } else if (want.startsWith('-')) {
          const at = texts.findIndex((t, j) => j >= k && (t === want || t.startsWith(`${want}=`)));
          if (at < 0) matched = false;
          else k = at + 1;
        } else {
          let afterOption = false;
          while (k < texts.length && texts[k] !== want) {
            const t = texts[k]!;
            if (t === '--' || (!t.startsWith('-') && !afterOption)) break;
            afterOption = t.startsWith('-') && !t.includes('=');
            k++;
          }
          if (texts[k] !== want) matched = false;
          k++;
        }
        if (!matched) break;
      }
      if (matched)
        throw new Refused(
          shown,
          `matches the blocked command "${b.entry}" (guard.blockedCommands / LOKI_BLOCKED_COMMANDS)`,
        );
    }
  }
}

/** The short options given (`-R` as `-r`), `--recursive` and `--force` as `r` and `f`. */
function shortOptions(texts: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const t of texts) {
    if (/^-[a-zA-Z0-9]+$/.test(t)) for (const l of t.slice(1)) out.add(l === 'R' ? 'r' : l);
    else if (t === '--recursive') out.add('r');
    else if (t === '--force') out.add('f');
  }
  return out;
}

/** Writing commands whose targets are not simply every operand. */
const WRITERS: Readonly<
  Record<string, (args: Value[]) => { targets: Value[]; implicit?: boolean; recursive?: boolean }>
> = {
  cp: (args) => ({ targets: destination(args) }),
  install: (args) =>
    args.some((v) => v.text === '-d' || v.text === '--directory')
      ? { targets: operandValues(args) }
      : { targets: destination(args) },
  scp: (args) => ({ targets: destination(args).filter((v) => !isRemote(v.text)) }),
  rsync: (args) => {
    const texts = args.map((v) => v.text);
    const all = texts.includes('--remove-source-files')
      ? [...operandValues(args), ...destination(args)]
      : destination(args);
    return {
      targets: all.filter((v) => !isRemote(v.text)),
      recursive: texts.some((t) => t.startsWith('--delete') || t === '--del'),
    };
  },
  sed: (args) =>
    args.some((v) => /^-[a-zA-Z]*i/.test(v.text) || v.text.startsWith('--in-place'))
      ? { targets: operandValues(args) }
      : { targets: [] },
  yq: (args) =>
    args.some((v) => /^-[a-zA-Z]*i/.test(v.text) || v.text === '--inplace')
      ? { targets: operandValues(args) }
      : { targets: [] },
  prettier: (args) =>
    args.some((v) => v.text === '--write' || v.text === '-w') ? { targets: operandValues(args) } : { targets: [] },
  gofmt: (args) => (args.some((v) => v.text === '-w') ? { targets: operandValues(args) } : { targets: [] }),
  sqlite3: (args) =>
    args.some((v) => v.text === '-readonly' || v.text === '--readonly')
      ? { targets: [] }
      : {
          // The database, and any a statement attaches or writes (`ATTACH '.loki/loki.db' AS l`, `VACUUM INTO`).
          targets: [
            ...operandValues(args).slice(0, 1),
            ...args.flatMap((v) =>
              [
                ...v.text.matchAll(
                  /\b(?:ATTACH(?:\s+DATABASE)?|INTO|\.open|\.output|\.once|\.save|\.backup(?:\s+\w+)?)\s+(?:'([^']*)'|"([^"]*)"|([^\s;'"]+))/gi,
                ),
              ].map((m) => ({ ...v, glob: false, text: m[1] ?? m[2] ?? m[3] ?? '' })),
            ),
          ],
        },
  awk: (args) => awkTargets(args),
  gawk: (args) => awkTargets(args),
  sort: (args) => ({ targets: [optionValue(args, '-o', '--output')].filter((v): v is Value => v !== null) }),
  shuf: (args) => ({ targets: [optionValue(args, '-o', '--output')].filter((v): v is Value => v !== null) }),
  uniq: (args) => ({ targets: operandValues(args).slice(1, 2) }),
  tar: (args) => tarTargets(args),
  unzip: (args) => {
    const d = optionValue(args, '-d', '');
    return d ? { targets: [{ ...d, text: `${d.text}/${UNKNOWN}` }] } : { targets: [], implicit: true };
  },
  cpio: (args) =>
    args.some((v) => /^-[a-zA-Z]*i/.test(v.text) || v.text === '--extract')
      ? { targets: [], implicit: true }
      : { targets: [] },
  npm: (args) => packageInstall(args),
  pnpm: (args) => packageInstall(args),
  yarn: (args) => packageInstall(args),
  bun: (args) => packageInstall(args),
  patch: (args) => ({ targets: operandValues(args).slice(0, 1), implicit: true }),
};

/** gawk's `-i inplace` (`--include=inplace`) rewrites the files after the program. */
function awkTargets(args: Value[]): { targets: Value[] } {
  const texts = args.map((v) => v.text);
  const inplace = texts.some(
    (t, k) =>
      t === '-iinplace' ||
      t === '--include=inplace' ||
      ((t === '-i' || t === '--include') && texts[k + 1] === 'inplace'),
  );
  if (!inplace) return { targets: [] };
  let i = 0;
  let program = true;
  while (i < args.length && texts[i]!.startsWith('-') && texts[i] !== '--') {
    if (/^-[fe]$|^--(?:file|source)$/.test(texts[i]!)) program = false;
    i += /^-[FvfiEe]$|^--(?:file|include|source|assign|field-separator)$/.test(texts[i]!) ? 2 : 1;
  }
  if (texts[i] === '--') i++;
  return { targets: args.slice(i + (program ? 1 : 0)).filter((v) => !/^[A-Za-z_]\w*=/.test(v.text)) };
}

function packageInstall(args: Value[]): { targets: Value[]; implicit?: boolean } {
  const sub = args.find((v) => !v.text.startsWith('-'))?.text;
  if (!sub || !/^(?:install|i|ci|add|update|up|upgrade|remove|rm|uninstall|un|rebuild|link|prune)$/.test(sub))
    return { targets: [] };
  const prefix =
    optionValue(args, '', '--prefix') ?? optionValue(args, '', '--cwd') ?? optionValue(args, '-C', '--dir');
  return prefix ? { targets: [{ ...prefix, text: `${prefix.text}/${UNKNOWN}` }] } : { targets: [], implicit: true };
}

/** tar: the archive it creates (-c/-r/-u, -f FILE), the folder it extracts into (-x, -C DIR), --remove-files. */
function tarTargets(args: Value[]): { targets: Value[]; implicit?: boolean } {
  const texts = args.map((v) => v.text);
  let mode = '';
  let file: Value | null = null;
  let dir: Value | null = null;
  const takes = 'fCTXbgKNVLH';
  for (let i = 0; i < args.length; i++) {
    const t = texts[i]!;
    const oldStyle = i === 0 && /^[A-Za-z]+$/.test(t);
    if (oldStyle || /^-[A-Za-z]+$/.test(t)) {
      const letters = oldStyle ? t : t.slice(1);
      let next = i + 1;
      for (const l of letters) {
        if ('cxtruAd'.includes(l)) mode ||= l;
        if (takes.includes(l)) {
          if (l === 'f') file = args[next] ?? null;
          if (l === 'C') dir = args[next] ?? null;
          next++;
        }
      }
      i = next - 1;
      continue;
    }
    const long = /^--(file|directory|extract|get|create|append|update|delete)(?:=(.*))?$/s.exec(t);
    if (long) {
      const [, key, value] = long;
      if (key === 'file' || key === 'directory') {
        const v = value !== undefined ? { ...args[i]!, text: value } : (args[++i] ?? null);
        if (key === 'file') file = v;
        else dir = v;
      } else mode ||= key === 'extract' || key === 'get' ? 'x' : 'c';
    }
  }
  const targets: Value[] = [];
  if (texts.includes('--remove-files')) targets.push(...operandValues(args.slice(1)));
  if ('cruAd'.includes(mode) && mode && file && file.text !== '-') targets.push(file);
  if (mode === 'x') {
    if (dir) targets.push({ ...dir, text: `${dir.text}/${UNKNOWN}` });
    else return { targets, implicit: true };
  }
  return { targets };
}

function isRemote(text: string): boolean {
  return /^[^/]*:/.test(text) && !text.startsWith('./');
}

/**
 * cp-like commands: the -t folder, or the last operand; and, since a folder destination receives each source
 * under its own name (`cp -r /tmp/x/.loki .` writes `./.loki`), `dest/basename(source)` for every source.
 */
function destination(args: Value[]): Value[] {
  const t = optionValue(args, '-t', '--target-directory');
  const ops = operandValues(args);
  const dest = t ?? (ops.length > 1 ? ops[ops.length - 1]! : null);
  if (!dest) return [];
  const sources = t ? ops.filter((v) => v !== t && v.text !== t.text) : ops.slice(0, -1);
  return [
    dest,
    ...sources.map((src) => ({
      ...dest,
      glob: dest.glob || src.glob,
      text: `${dest.text}/${path.basename(src.text.replace(/^[^/]*:(?!\/\/)/, '') || '.')}`,
    })),
  ];
}

/** The operands (arguments that are not options; every one after `--`), `--opt=value` values included. */
function operandValues(args: Value[]): Value[] {
  const out: Value[] = [];
  let options = true;
  for (const v of args) {
    // An empty word names no file (`sed -i '' ...`, BSD's in-place flag).
    if (v.text === '') continue;
    if (options && v.text === '--') options = false;
    else if (options && v.text.startsWith('--') && v.text.includes('='))
      out.push({ ...v, text: v.text.slice(v.text.indexOf('=') + 1) });
    else if (!options || !v.text.startsWith('-') || v.text === '-') out.push(v);
  }
  return out;
}

/** What echo prints: its words after the -n/-e/-E options, escapes decoded under -e. */
function echoed(args: Value[]): string {
  let i = 0;
  let escapes = false;
  while (i < args.length && /^-[neE]+$/.test(args[i]!.text)) {
    const flags = args[i]!.text;
    if (flags.includes('e')) escapes = flags.lastIndexOf('e') > flags.lastIndexOf('E');
    i++;
  }
  const text = args
    .slice(i)
    .map((v) => v.text)
    .join(' ');
  return escapes ? unescape(text) : text;
}

/** What printf prints, as far as the guard reads it: the format's escapes decoded, `%s`/`%b`/`%q`... filled in. */
function printed(args: Value[]): string {
  const start = args[0]?.text === '--' ? 1 : args[0]?.text === '-v' ? 2 : 0;
  const format = args[start]?.text ?? '';
  const rest = args.slice(start + 1).map((v) => v.text);
  let k = 0;
  let out = '';
  // The format is reused while arguments remain (`printf '%s\n' a b`), at most a few times.
  for (let round = 0; round < MAX_ITEMS && (round === 0 || k < rest.length); round++) {
    const before = k;
    out += unescape(format).replace(/%(%|[-+ #0-9.]*[a-zA-Z])/g, (_m, spec: string) => {
      if (spec === '%') return '%';
      const arg = rest[k++] ?? '';
      return spec.endsWith('b') ? unescape(arg) : arg;
    });
    if (k === before) break;
  }
  return out;
}

/** Backslash escapes as printf and echo -e read them (`\n`, `\t`, `\xHH`, `\0NNN`, `\NNN`, `\\`). */
function unescape(text: string): string {
  const simple: Record<string, string> = {
    n: '\n',
    t: '\t',
    r: '\r',
    a: '\x07',
    b: '\b',
    f: '\f',
    v: '\v',
    e: '\x1b',
    '\\': '\\',
  };
  return text.replace(/\\(x[0-9a-fA-F]{1,2}|0[0-7]{0,3}|[1-7][0-7]{0,2}|[ntrabfve\\]|c)/g, (m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    if (e === 'c') return '';
    return simple[e] ?? m;
  });
}

/**
 * The value of an option given as `-x VALUE`, `-xVALUE`, `--long VALUE` or `--long=VALUE`, or at the end of a
 * cluster of flags (`-fsSLo FILE`, `-qO-`).
 */
function optionValue(args: Value[], short: string, long: string): Value | null {
  const cluster = short ? new RegExp(`^-[a-zA-Z]*?${short.slice(1)}(.*)$`, 's') : null;
  for (let i = 0; i < args.length; i++) {
    const t = args[i]!.text;
    if (t === '--') return null;
    if (long && t === long) return args[i + 1] ?? null;
    if (long && t.startsWith(`${long}=`)) return { ...args[i]!, text: t.slice(long.length + 1) };
    const m = cluster && !t.startsWith('--') ? cluster.exec(t) : null;
    if (m) return m[1] ? { ...args[i]!, text: m[1] } : (args[i + 1] ?? null);
  }
  return null;
}

/** Index of the first argument after a wrapper's options (`-n 10`, `--signal=KILL`, `-k5`, `--`). */
function skipOptions(args: Value[], from: number, values: string, long: readonly string[]): number {
  let i = from;
  while (i < args.length) {
    const a = args[i]!.text;
    if (a === '--') return i + 1;
    if (!a.startsWith('-') || a.length < 2) return i;
    if (a.startsWith('--')) i += long.includes(a) ? 2 : 1;
    else if (/^-\d+$/.test(a)) i++;
    else {
      const letters = a.slice(1);
      const at = [...letters].findIndex((l) => values.includes(l));
      i += at >= 0 && at === letters.length - 1 ? 2 : 1;
    }
  }
  return i;
}

/** What a command printed, as items for xargs: paths from find or ls, words from echo, or one unknown item. */
function itemsOf(out: Output): Value[] {
  if (out?.kind === 'items') return out.items;
  if (out?.kind === 'text')
    return out.text
      .split(/\s+/)
      .filter(Boolean)
      .map((text) => ({ text, glob: false, subs: [] }));
  return [{ text: UNKNOWN, glob: false, subs: [] }];
}

/** Where a path argument is, against the directory the command runs in. */
function place(text: string, cwd: Cwd): Place {
  const lokiComponent = text.split('/').includes('.loki');
  const full = text.startsWith('/') ? text : cwd === null ? null : `${cwd}/${text}`;
  if (full === null) return { abs: null, exact: false, every: false, lokiComponent };
  const m = firstMarker(full);
  if (m < 0) return { abs: path.resolve(full), exact: true, every: false, lokiComponent };
  const slash = full.lastIndexOf('/', m);
  const every = full.slice(m) === EVERY && slash === m - 1;
  return { abs: slash < 0 ? null : path.resolve(full.slice(0, slash + 1) || '/'), exact: false, every, lokiComponent };
}

function subsOf(cmd: SimpleCommand): Sub[] {
  const out: Sub[] = [];
  for (const w of cmd.words) out.push(...w.subs);
  for (const r of cmd.redirects) out.push(...r.target.subs);
  if (cmd.stdin) out.push(...cmd.stdin.subs);
  return out;
}

function union(...sets: Cwd[][]): Cwd[] {
  const out: Cwd[] = [];
  for (const s of sets) for (const c of s) if (!out.includes(c)) out.push(c);
  // Past a few candidates the rest are unknown: the guard follows `cd` so far, not every path a script may take.
  return out.length <= MAX_CWDS ? out : [...out.slice(0, MAX_CWDS - 1), null];
}

function firstMarker(text: string): number {
  const u = text.indexOf(UNKNOWN);
  const e = text.indexOf(EVERY);
  return u < 0 ? e : e < 0 ? u : Math.min(u, e);
}

/** A command as the guard read it, for reasons: unknown parts shown as `…`. */
function show(values: Value[]): string {
  return values
    .map((v) => v.text)
    .join(' ')
    .split(UNKNOWN)
    .join('…')
    .split(EVERY)
    .join('*');
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= 120 ? one : `${one.slice(0, 119)}…`;
}
