/**
 * A shell command line read the way bash reads it, for the guard (domain/guard.ts). Pure.
 *
 * Two parts. The scanner here finds the structure: the commands of a line and how they are joined (`;`, `&&`,
 * `||`, `|`, `&`, newlines), subshells, redirections, here-documents and here-strings, comments, and every
 * command substitution (`$(...)`, backticks, `<(...)`, `>(...)`, `$((...))`), each parsed as a script of its own.
 * The words themselves (quotes, escapes, `$'...'`, variables) are read by shell-quote, one word at a time, once
 * the scanner has cut them out: shell-quote alone does not model substitutions, backticks, here-documents or
 * comments inside a word (`a#b`), which is what a guard has to see through.
 *
 * What a word cannot be known statically (an unset variable, a substitution's output, `$1` outside `sh -c`) is
 * the UNKNOWN marker inside its text, so the guard can tell `rm -rf "$X"/.loki` (a known tail) from `rm -rf x`.
 */
import { parse as shellQuote } from 'shell-quote';

/** Stands for text the guard cannot know (a variable, a substitution's output). */
export const UNKNOWN = '\u0001';
/** Stands for every entry of the folder before it (`ls dir | xargs ...`, `find dir -mindepth 1 ...`). */
export const EVERY = '\u0002';

export type Connector = ';' | '&&' | '||' | '|';

/** A command substitution (or process substitution, or arithmetic), with the script it runs. */
export interface Sub {
  kind: '$(' | '`' | '<(' | '>(' | '$((';
  text: string;
  script: Script;
}

export interface Word {
  /** As written, each substitution replaced by `${__LOKI_SUB<n>}` (n indexes `subs`), for shell-quote. */
  raw: string;
  subs: Sub[];
  /** Starts with an unquoted `~`. */
  tilde: boolean;
  /** Holds an unquoted `*`, `?` or `[`. */
  glob: boolean;
  /** Holds an unquoted `{` (brace expansion: `.{loki,git}`). */
  braces: boolean;
  /** Known text, taken as it is (a here-document with a quoted delimiter). */
  literal?: string;
}

export interface Redirect {
  op: string;
  target: Word;
}

export interface SimpleCommand {
  kind: 'simple';
  /** How it is joined to the command before it. */
  connector: Connector;
  words: Word[];
  redirects: Redirect[];
  /** What a here-document or here-string feeds it. */
  stdin: Word | null;
  /** `name() ...`: a function definition, which runs nothing itself. */
  defines: boolean;
}

export interface Group {
  kind: 'group';
  connector: Connector;
  /** A `( ... )` subshell: a `cd` inside does not outlive it. */
  body: Script;
  redirects: Redirect[];
  stdin: Word | null;
}

export type Command = SimpleCommand | Group;

export interface Script {
  commands: Command[];
}

/** A line nested deeper, or longer, than the guard follows: refused as too complex to check. */
export class ShellTooComplex extends Error {}

const MAX_NESTING = 32;
/** An operator starting a redirection, with its optional file descriptor (`2>`, `{fd}>`, `&>`). */
const REDIRECT = /(\d+|\{[A-Za-z_]\w*\})?(<<<|<<-|<<|<>|<&|>>|>&|>\||&>>|&>|<|>)/y;

export function parseShell(src: string, nesting = 0): Script {
  return new Scanner(src, nesting).script(null);
}

class Scanner {
  private pos = 0;
  private readonly pending: { delim: string; strip: boolean; expand: boolean; target: Command }[] = [];

  constructor(
    private readonly src: string,
    private nesting: number,
  ) {
    if (nesting > MAX_NESTING) throw new ShellTooComplex(`nested deeper than ${MAX_NESTING} levels`);
  }

  /** Commands until the end, or until the `)` that closes a subshell or a `$(`. */
  script(close: ')' | null): Script {
    const commands: Command[] = [];
    const s = this.src;
    let connector: Connector = ';';
    this.enter();
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      const next = s[this.pos + 1];
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '\\' && next === '\n') this.pos += 2;
      else if (c === '\n') {
        this.pos++;
        this.hereDocuments();
      } else if (c === '#') this.comment();
      else if (c === ';') {
        this.pos += s.startsWith(';;&', this.pos) ? 3 : next === ';' || next === '&' ? 2 : 1;
        connector = ';';
      } else if (c === '&' && next === '&') {
        this.pos += 2;
        connector = '&&';
      } else if (c === '&' && next !== '>') {
        this.pos++;
        connector = ';';
      } else if (c === '|') {
        this.pos += next === '|' || next === '&' ? 2 : 1;
        connector = next === '|' ? '||' : '|';
      } else if (c === ')') {
        this.pos++;
        // A `)` with nothing open ends a `case` pattern: nothing to run.
        if (close) break;
        connector = ';';
      } else if (c === '(' && next === '(') {
        // `(( ... ))`: arithmetic, or (bash retries) two nested subshells; read both ways, apart from the line.
        const inner = this.balanced(2);
        commands.push({
          kind: 'group',
          connector,
          body: new Scanner(inner, this.nesting + 1).script(null),
          redirects: [],
          stdin: null,
        });
        connector = ';';
      } else if (c === '(') {
        this.pos++;
        const body = this.script(')');
        const group: Group = { kind: 'group', connector, body, redirects: [], stdin: null };
        this.trailingRedirects(group);
        commands.push(group);
        connector = ';';
      } else {
        commands.push(this.simple(connector));
        connector = ';';
      }
    }
    this.leave();
    return { commands };
  }

  private simple(connector: Connector): SimpleCommand {
    const cmd: SimpleCommand = { kind: 'simple', connector, words: [], redirects: [], stdin: null, defines: false };
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      const next = s[this.pos + 1];
      if (c === ' ' || c === '\t' || c === '\r') {
        this.pos++;
        continue;
      }
      if (c === '\\' && next === '\n') {
        this.pos += 2;
        continue;
      }
      if (c === '\n' || c === ';' || c === '|' || c === ')' || (c === '&' && next !== '>')) break;
      if (c === '#') {
        this.comment();
        continue;
      }
      if (c === '(') {
        const def = /\(\s*\)/y;
        def.lastIndex = this.pos;
        if (def.test(s)) {
          this.pos = def.lastIndex;
          cmd.defines = true;
        }
        // Otherwise a syntax error for bash; the caller reads it as a subshell.
        break;
      }
      if ((c === '<' || c === '>') && next === '(') {
        cmd.words.push(this.word());
        continue;
      }
      if (this.redirect(cmd)) continue;
      cmd.words.push(this.word());
      if (cmd.words.length === 2 && cmd.words[0]!.raw === 'function') {
        // `function name { ...; }`: the body that follows is read as commands of its own.
        cmd.defines = true;
        break;
      }
    }
    return cmd;
  }

  /** A redirection at the current position, if there is one: added to `into`. */
  private redirect(into: Command): boolean {
    const s = this.src;
    REDIRECT.lastIndex = this.pos;
    const m = REDIRECT.exec(s);
    if (!m) return false;
    const op = m[2]!;
    if ((op === '<' || op === '>') && s[REDIRECT.lastIndex] === '(') return false;
    this.pos = REDIRECT.lastIndex;
    this.blanks();
    if (this.atOperator()) return true;
    const target = this.word();
    if (op === '<<' || op === '<<-') {
      const quoted = /['"\\]/.test(target.raw);
      this.pending.push({
        delim: quoted ? dequote(target.raw) : target.raw,
        strip: op === '<<-',
        expand: !quoted,
        target: into,
      });
    } else if (op === '<<<') into.stdin = target;
    else into.redirects.push({ op, target });
    return true;
  }

  private trailingRedirects(group: Group): void {
    for (;;) {
      this.blanks();
      if (this.pos >= this.src.length || !this.redirect(group)) return;
    }
  }

  /** One word, up to an unquoted blank or operator, substitutions parsed as they are met. */
  private word(): Word {
    const s = this.src;
    const start = this.pos;
    const w: Word = { raw: '', subs: [], tilde: s[start] === '~', glob: false, braces: false };
    let raw = '';
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      const next = s[this.pos + 1];
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === ';' || c === '&' || c === '|' || c === ')')
        break;
      if (c === '<' || c === '>') {
        if (next !== '(' || this.pos !== start) break;
        this.pos += 2;
        raw += this.substitution(w, c === '<' ? '<(' : '>(', () => this.script(')'), start);
        continue;
      }
      if (c === '(') {
        // `name=(a b)` (an array) and `@(a|b)` (an extended glob) keep their parentheses inside the word: words,
        // not commands, though the substitutions inside them run.
        const prev = s[this.pos - 1] ?? '';
        if (this.pos === start || !'=@!?*+'.includes(prev)) break;
        const inner = this.balanced(1);
        w.subs.push(...new Scanner(inner, this.nesting + 1).expandingText().subs);
        raw += this.placeholder(w, { kind: '$((', text: inner, script: { commands: [] } });
        if (prev !== '=') w.glob = true;
        continue;
      }
      if (c === '\\') {
        if (next === '\n') this.pos += 2;
        else {
          raw += s.slice(this.pos, this.pos + 2);
          this.pos += 2;
        }
        continue;
      }
      if (c === "'") {
        const end = s.indexOf("'", this.pos + 1);
        raw += end < 0 ? `${s.slice(this.pos)}'` : s.slice(this.pos, end + 1);
        this.pos = end < 0 ? s.length : end + 1;
        continue;
      }
      if (c === '$' && next === "'") {
        raw += this.ansiC();
        continue;
      }
      if (c === '"' || (c === '$' && next === '"')) {
        if (c === '$') this.pos++;
        raw += this.doubleQuoted(w);
        continue;
      }
      if (c === '`') {
        raw += this.backtick(w);
        continue;
      }
      if (c === '$') {
        raw += this.dollar(w);
        continue;
      }
      // A `#` inside a word is a plain character (only a word's first `#` starts a comment); shell-quote would
      // take it for a comment, so it is escaped for it.
      if (c === '#') {
        raw += '\\#';
        this.pos++;
        continue;
      }
      if (c === '*' || c === '?' || c === '[') w.glob = true;
      if (c === '{') w.braces = true;
      raw += c;
      this.pos++;
    }
    w.raw = raw;
    return w;
  }

  /** `"..."`: copied for shell-quote, its substitutions parsed. */
  private doubleQuoted(w: Word): string {
    const s = this.src;
    let raw = '"';
    this.pos++;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === '"') {
        this.pos++;
        return `${raw}"`;
      }
      if (c === '\\') {
        if (s[this.pos + 1] === '\n') this.pos += 2;
        else {
          raw += s.slice(this.pos, this.pos + 2);
          this.pos += 2;
        }
      } else if (c === '`') raw += this.backtick(w);
      else if (c === '$') raw += this.dollar(w);
      else {
        raw += c;
        this.pos++;
      }
    }
    return `${raw}"`;
  }

  /** `$'...'` (bash ANSI-C quoting), copied whole: shell-quote decodes its escapes. */
  private ansiC(): string {
    const s = this.src;
    let i = this.pos + 2;
    while (i < s.length && s[i] !== "'") i += s[i] === '\\' ? 2 : 1;
    const raw = s.slice(this.pos, Math.min(i + 1, s.length));
    this.pos = Math.min(i + 1, s.length);
    return raw.endsWith("'") && raw.length > 2 ? raw : `${raw}'`;
  }

  /** At a `$`: a substitution, an arithmetic expansion, a `${...}` parameter, or a plain `$name`. */
  private dollar(w: Word): string {
    const s = this.src;
    const next = s[this.pos + 1];
    const start = this.pos;
    if (next === '(' && s[this.pos + 2] === '(') {
      this.pos++;
      const inner = this.balanced(2);
      return this.placeholder(w, {
        kind: '$((',
        text: inner,
        script: new Scanner(inner, this.nesting + 1).script(null),
      });
    }
    if (next === '(') {
      this.pos += 2;
      return this.substitution(w, '$(', () => this.script(')'), start);
    }
    if (next === '{') {
      // `${name...}`: copied for shell-quote up to its matching brace, substitutions inside parsed
      // (`${x:-$(rm -rf /)}` runs the rm).
      let raw = '${';
      this.pos += 2;
      let depth = 1;
      while (this.pos < s.length && depth > 0) {
        const c = s[this.pos]!;
        if (c === '}') {
          depth--;
          raw += c;
          this.pos++;
        } else if (c === '{') {
          depth++;
          raw += c;
          this.pos++;
        } else if (c === '\\') {
          raw += s.slice(this.pos, this.pos + 2);
          this.pos += 2;
        } else if (c === "'") {
          const end = s.indexOf("'", this.pos + 1);
          raw += end < 0 ? s.slice(this.pos) : s.slice(this.pos, end + 1);
          this.pos = end < 0 ? s.length : end + 1;
        } else if (c === '"') raw += this.doubleQuoted(w);
        else if (c === '`') raw += this.backtick(w);
        else if (c === '$') raw += this.dollar(w);
        else {
          raw += c;
          this.pos++;
        }
      }
      return depth > 0 ? `${raw}}` : raw;
    }
    this.pos++;
    return '$';
  }

  /** `` `...` ``: the text up to the closing backtick, its backslash escapes undone, parsed apart. */
  private backtick(w: Word): string {
    const s = this.src;
    let i = this.pos + 1;
    let inner = '';
    while (i < s.length && s[i] !== '`') {
      if (s[i] === '\\' && i + 1 < s.length) {
        const e = s[i + 1]!;
        inner += e === '\\' || e === '`' || e === '$' ? e : `\\${e}`;
        i += 2;
      } else inner += s[i++];
    }
    this.pos = Math.min(i + 1, s.length);
    return this.placeholder(w, { kind: '`', text: inner, script: new Scanner(inner, this.nesting + 1).script(null) });
  }

  /** `$(...)`, `<(...)`, `>(...)`: parsed in place (a here-document inside reads on from the same text). */
  private substitution(w: Word, kind: Sub['kind'], parse: () => Script, start: number): string {
    const script = parse();
    // The text inside the parentheses (`pwd` of `$(pwd)`), for the substitutions whose output the guard knows.
    const text = this.src.slice(start + 2, this.src[this.pos - 1] === ')' ? this.pos - 1 : this.pos);
    return this.placeholder(w, { kind, text, script });
  }

  private placeholder(w: Word, sub: Sub): string {
    w.subs.push(sub);
    return `\${__LOKI_SUB${w.subs.length - 1}}`;
  }

  /** The text inside `open` opening parentheses at the current position, up to the ones that close them. */
  private balanced(open: number): string {
    const s = this.src;
    this.pos += open;
    const from = this.pos;
    let depth = open;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === '\\') this.pos += 2;
      else if (c === "'" || c === '"') {
        const end = s.indexOf(c, this.pos + 1);
        this.pos = end < 0 ? s.length : end + 1;
      } else if (c === '(') {
        depth++;
        this.pos++;
      } else if (c === ')') {
        depth--;
        this.pos++;
        if (depth === 0) return s.slice(from, this.pos - open);
      } else this.pos++;
    }
    return s.slice(from);
  }

  /** After a newline: the bodies of the here-documents started on the line before, in order. */
  private hereDocuments(): void {
    const s = this.src;
    for (const h of this.pending.splice(0)) {
      let body = '';
      while (this.pos < s.length) {
        const nl = s.indexOf('\n', this.pos);
        const end = nl < 0 ? s.length : nl;
        let line = s.slice(this.pos, end);
        this.pos = nl < 0 ? s.length : nl + 1;
        if (h.strip) line = line.replace(/^\t+/, '');
        if (line === h.delim) break;
        body += `${line}\n`;
      }
      h.target.stdin = h.expand
        ? new Scanner(body, this.nesting + 1).expandingText()
        : { raw: '', subs: [], tilde: false, glob: false, braces: false, literal: body };
    }
  }

  /** The whole text as a here-document body with an unquoted delimiter: `$`, backticks and `\` work as in "...". */
  private expandingText(): Word {
    const s = this.src;
    const w: Word = { raw: '', subs: [], tilde: false, glob: false, braces: false };
    let raw = '"';
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === '\\') {
        raw += s.slice(this.pos, this.pos + 2);
        this.pos += 2;
      } else if (c === '$') raw += this.dollar(w);
      else if (c === '`') raw += this.backtick(w);
      else {
        raw += c === '"' ? '\\"' : c;
        this.pos++;
      }
    }
    w.raw = `${raw}"`;
    return w;
  }

  private comment(): void {
    const nl = this.src.indexOf('\n', this.pos);
    this.pos = nl < 0 ? this.src.length : nl;
  }

  private blanks(): void {
    while (this.pos < this.src.length) {
      const c = this.src[this.pos];
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '\\' && this.src[this.pos + 1] === '\n') this.pos += 2;
      else return;
    }
  }

  private atOperator(): boolean {
    const c = this.src[this.pos];
    return c === undefined || c === '\n' || c === ';' || c === '|' || c === '&' || c === ')';
  }

  private enter(): void {
    if (++this.nesting > MAX_NESTING) throw new ShellTooComplex(`nested deeper than ${MAX_NESTING} levels`);
  }

  private leave(): void {
    this.nesting--;
  }
}

/** A here-document delimiter as the shell compares it: quotes and backslashes removed. */
function dequote(raw: string): string {
  return raw.replace(/\\(.)/g, '$1').replace(/['"]/g, '');
}

/** What a word's value depends on: the working directory, the home directory, `sh -c` positional parameters. */
export interface WordScope {
  cwd: string | null;
  home: string | null;
  /** `$0`, `$1`, ... inside `sh -c '...' name args` (null: unknown). */
  positional: readonly string[] | null;
  /** The known output of a substitution (`$(pwd)`), or null. */
  subOutput: (sub: Sub) => string | null;
}

export interface Value {
  /** The word's text, UNKNOWN where it cannot be known. */
  text: string;
  /** An unquoted glob: `text` is the pattern. */
  glob: boolean;
  /** The substitutions of the word it came from. */
  subs: readonly Sub[];
}

const PLAIN_WORD = /^[\w./:@%+,=-]*$/;
const WHOLE_SUBSTITUTION = /^\$\{__LOKI_SUB\d+\}$/;
/** The most words one word's braces may expand to: past it the line is refused, not checked in part. */
export const MAX_BRACE_WORDS = 4096;

/**
 * A word's values: one, or several after brace expansion. A `${X:-word}` (or `-`, `:=`, `=`, `:+`, `+`) whose
 * variable is unknown has two: the variable's (unknown) and the word's.
 */
export function wordValues(w: Word, scope: WordScope): Value[] {
  const alternates = { seen: false };
  const texts = [unquote(w, scope, false, alternates)];
  if (alternates.seen) texts.push(unquote(w, scope, true, alternates));
  return texts.flatMap((text) => {
    if (w.tilde) text = tilde(text, scope);
    // An unquoted substitution alone is split into words: `rm $(echo a b)` removes two files.
    const split = WHOLE_SUBSTITUTION.test(w.raw)
      ? text.split(/\s+/).filter((t) => t !== '')
      : w.braces
        ? expandBraces(text)
        : [text];
    return split.map((t) => ({ text: t, glob: w.glob, subs: w.subs }));
  });
}

function unquote(w: Word, scope: WordScope, alternate: boolean, alternates: { seen: boolean }): string {
  if (w.literal !== undefined) return w.literal;
  if (PLAIN_WORD.test(w.raw)) return w.raw;
  try {
    return shellQuote(w.raw, (key: string) => variable(key, w, scope, alternate, alternates))
      .map((p) => (typeof p === 'string' ? p : 'pattern' in p ? p.pattern : 'op' in p ? p.op : `#${p.comment}`))
      .join('');
  } catch {
    // shell-quote refuses a few malformed expansions (`${}`); bash refuses them too, but the guard only says
    // it cannot know the word.
    return UNKNOWN;
  }
}

const WITH_WORD = /^[A-Za-z_]\w*:?[-=+]([\s\S]*)$/;

function variable(key: string, w: Word, scope: WordScope, alternate: boolean, alternates: { seen: boolean }): string {
  const withWord = WITH_WORD.exec(key);
  if (withWord) {
    alternates.seen = true;
    if (alternate) return withWord[1]!.replace(/\\(.)/g, '$1').replace(/['"]/g, '');
  }
  if (key === '') return '$';
  if (key === 'PWD') return scope.cwd ?? UNKNOWN;
  if (key === 'HOME') return scope.home ?? UNKNOWN;
  const sub = /^__LOKI_SUB(\d+)$/.exec(key);
  if (sub) {
    const s = w.subs[Number(sub[1])];
    return (s && scope.subOutput(s)) ?? UNKNOWN;
  }
  if (scope.positional && /^\d$/.test(key)) return scope.positional[Number(key)] ?? '';
  if (scope.positional && (key === '@' || key === '*')) return scope.positional.slice(1).join(' ');
  return UNKNOWN;
}

function tilde(text: string, scope: WordScope): string {
  const m = /^~([^/]*)/.exec(text);
  if (!m) return text;
  const who = m[1]!;
  const base = who === '' ? scope.home : who === '+' ? scope.cwd : null;
  return (base ?? UNKNOWN) + text.slice(m[0].length);
}

/**
 * Bash brace expansion (`a{b,c}`, `{1..3}`). A word expanding to more than MAX_BRACE_WORDS is refused as too
 * complex (checking only part of it would let the rest through); a sequence is cut at the cap.
 */
export function expandBraces(text: string): string[] {
  const out: string[] = [];
  const queue = [text];
  for (let k = 0; k < queue.length; k++) {
    const t = queue[k]!;
    const m = findBraces(t);
    if (!m) {
      out.push(t);
      continue;
    }
    if (out.length + queue.length - k - 1 + m.alternatives.length > MAX_BRACE_WORDS)
      throw new ShellTooComplex(`a word whose braces expand to more than ${MAX_BRACE_WORDS} words`);
    for (const alt of m.alternatives) queue.push(t.slice(0, m.start) + alt + t.slice(m.end));
  }
  return out;
}

function findBraces(t: string): { start: number; end: number; alternatives: string[] } | null {
  for (let start = t.indexOf('{'); start >= 0; start = t.indexOf('{', start + 1)) {
    let depth = 0;
    const commas: number[] = [];
    for (let i = start; i < t.length; i++) {
      const c = t[i];
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) {
        const body = t.slice(start + 1, i);
        if (commas.length > 0) {
          const cuts = [start, ...commas, i];
          return {
            start,
            end: i + 1,
            alternatives: cuts.slice(0, -1).map((from, k) => t.slice(from + 1, cuts[k + 1])),
          };
        }
        const seq = /^(-?\d+|[a-zA-Z])\.\.(-?\d+|[a-zA-Z])$/.exec(body);
        if (seq) return { start, end: i + 1, alternatives: sequence(seq[1]!, seq[2]!) };
        break;
      } else if (c === ',' && depth === 1) commas.push(i);
    }
  }
  return null;
}

function sequence(a: string, b: string): string[] {
  const numeric = /\d/.test(a);
  const from = numeric ? Number(a) : a.charCodeAt(0);
  const to = numeric ? Number(b) : b.charCodeAt(0);
  const step = from <= to ? 1 : -1;
  const out: string[] = [];
  for (let v = from; out.length < MAX_BRACE_WORDS; v += step) {
    out.push(numeric ? String(v) : String.fromCharCode(v));
    if (v === to) break;
  }
  return out;
}
