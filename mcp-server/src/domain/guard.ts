/**
 * The PreToolUse guard, pure: should the host run this tool call? File-writing tools may not touch `.loki/` (the
 * server is its only writer) nor leave `guard.allowedPaths`; shell commands are split into every command they
 * run (`a; b`, `a && b`, `a | b`, `$(b)`, `` `b` ``, subshells) and each part is checked against the built-in
 * dangerous patterns and `guard.blockedCommands`; staged autonomy asks before any write or command.
 */
import path from 'node:path';

export type GuardDecision = { decision: 'allow' } | { decision: 'deny' | 'ask'; reason: string };

export interface GuardConfig {
  projectRoot: string;
  /** Relative to the project; empty: the whole project. */
  allowedPaths: readonly string[];
  /** Command prefixes (or /regex/) refused wherever they appear in a compound command. */
  blockedCommands: readonly string[];
  stagedAutonomy: boolean;
}

/** Claude Code's file-writing tools and the input field holding the path. */
export const FILE_TOOLS: Readonly<Record<string, string>> = {
  Write: 'file_path',
  Edit: 'file_path',
  MultiEdit: 'file_path',
  NotebookEdit: 'notebook_path',
};

/** Always refused: destroying the machine, the home directory or the project, or piping the network into a shell. */
const DANGEROUS: readonly [RegExp, string][] = [
  [/^(?:sudo\s+)?mkfs(?:\.\w+)?\b/, 'formats a file system'],
  [/^(?:sudo\s+)?dd\b.*\bof=\/dev\//, 'overwrites a device'],
  [/^(?:sudo\s+)?chmod\s+(?:-[a-zA-Z]*R[a-zA-Z]*\s+)\S+\s+\/(?:\s|$)/, 'changes permissions of the whole file system'],
  [/^(?:sudo\s+)?(?:shutdown|reboot|halt|poweroff)\b/, 'stops the machine'],
  [/^git\s+push\b.*(?:\s--force\b|\s-f\b)/, 'force-pushes, which can destroy shared history'],
  [
    /^git\s+(?:reset\s+--hard|clean\s+-[a-zA-Z]*f)\b/,
    'discards work irrecoverably (use loki_checkpoint_create / loki_rollback instead)',
  ],
];

/** Checked against the whole line, since they span a pipe or a separator. */
const DANGEROUS_LINES: readonly [RegExp, string][] = [
  [/:\(\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:/, 'is a fork bomb'],
  [/\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b/, 'pipes a download straight into a shell'],
];

/** Shell writes into .loki/ or removal of it. */
const TOUCHES_LOKI = /(?:^|[\s'"=<>|])(?:\.\/)?\.loki(?:\/|\s|$|['"])/;
const WRITES = /^(?:rm|mv|cp|tee|truncate|touch|chmod|chown|ln|sed\s+-i|perl\s+-i|dd|install|mkdir|rmdir)\b|>>?/;

const SHELL_STARTERS = /^(?:sudo|env|command|exec|nohup|time|nice|xargs)\s+/;

export function guardToolCall(toolName: string, input: Record<string, unknown>, cfg: GuardConfig): GuardDecision {
  const field = FILE_TOOLS[toolName];
  if (field) return guardFileWrite(typeof input[field] === 'string' ? (input[field] as string) : '', cfg);
  if (toolName === 'Bash') return guardCommand(typeof input.command === 'string' ? input.command : '', cfg);
  return { decision: 'allow' };
}

export function guardFileWrite(file: string, cfg: GuardConfig): GuardDecision {
  if (!file) return { decision: 'allow' };
  const abs = path.resolve(cfg.projectRoot, file);
  const rel = path.relative(cfg.projectRoot, abs);
  const inside = rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  if (inside && (rel === '.loki' || rel.startsWith(`.loki${path.sep}`))) {
    return {
      decision: 'deny',
      reason: `${file} is inside .loki/, which only the loki-mode server writes: use the loki_* tools (loki_task_update, loki_checklist_set, ...) instead`,
    };
  }
  if (cfg.allowedPaths.length > 0) {
    const allowed = inside && cfg.allowedPaths.some((a) => isUnder(rel, a));
    if (!allowed)
      return {
        decision: 'deny',
        reason: `${file} is outside the allowed paths (guard.allowedPaths / LOKI_ALLOWED_PATHS: ${cfg.allowedPaths.join(', ')}); write inside them or ask the user to widen them`,
      };
  }
  if (cfg.stagedAutonomy)
    return { decision: 'ask', reason: `staged autonomy (LOKI_STAGED_AUTONOMY) asks before each write: ${file}` };
  return { decision: 'allow' };
}

export function guardCommand(command: string, cfg: GuardConfig): GuardDecision {
  for (const [pattern, why] of DANGEROUS_LINES)
    if (pattern.test(command)) return { decision: 'deny', reason: `refused: \`${clip(command)}\` ${why}` };
  for (const blocked of cfg.blockedCommands) {
    if (isRegex(blocked) && matchesBlocked(command, blocked))
      return {
        decision: 'deny',
        reason: `refused: \`${clip(command)}\` matches the blocked command "${blocked}" (guard.blockedCommands / LOKI_BLOCKED_COMMANDS)`,
      };
  }
  for (const part of commandParts(command)) {
    const bare = part.replace(SHELL_STARTERS, '').replace(SHELL_STARTERS, '');
    if (isSweepingRemove(bare))
      return {
        decision: 'deny',
        reason: `refused: \`${clip(part)}\` deletes the whole file system, the home directory, a system folder or the project`,
      };
    for (const [pattern, why] of DANGEROUS) {
      if (pattern.test(bare) || pattern.test(part))
        return { decision: 'deny', reason: `refused: \`${clip(part)}\` ${why}` };
    }
    if (TOUCHES_LOKI.test(` ${bare}`) && WRITES.test(bare)) {
      return {
        decision: 'deny',
        reason: `refused: \`${clip(part)}\` changes .loki/, which only the loki-mode server writes; use the loki_* tools`,
      };
    }
    for (const blocked of cfg.blockedCommands) {
      if (matchesBlocked(bare, blocked))
        return {
          decision: 'deny',
          reason: `refused: \`${clip(part)}\` matches the blocked command "${blocked}" (guard.blockedCommands / LOKI_BLOCKED_COMMANDS)`,
        };
    }
  }
  if (cfg.stagedAutonomy && command.trim())
    return {
      decision: 'ask',
      reason: `staged autonomy (LOKI_STAGED_AUTONOMY) asks before each command: ${clip(command)}`,
    };
  return { decision: 'allow' };
}

/**
 * Every simple command a shell line runs: split on `;`, `&&`, `||`, `|`, `&`, newlines, and taken out of `$( )`,
 * backticks, `( )` subshells and `bash -c '...'` / `sh -c "..."`. Quotes are respected when splitting.
 */
export function commandParts(command: string, depth = 0): string[] {
  if (depth > 4) return [command.trim()];
  const parts: string[] = [];
  const nested: string[] = [];
  let current = '';
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"') current += command[i++] ?? '';
      current += ch;
      if (ch === '$' && quote === '"' && command[i + 1] === '(') {
        const end = closing(command, i + 1);
        nested.push(command.slice(i + 2, end));
      }
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      current += ch;
      continue;
    }
    if (ch === '\\') {
      current += ch + (command[++i] ?? '');
      continue;
    }
    if (ch === '$' && command[i + 1] === '(') {
      const end = closing(command, i + 1);
      nested.push(command.slice(i + 2, end));
      current += '$(...)';
      i = end;
      continue;
    }
    if (ch === '`') {
      const end = command.indexOf('`', i + 1);
      nested.push(command.slice(i + 1, end < 0 ? undefined : end));
      current += '`...`';
      i = end < 0 ? command.length : end;
      continue;
    }
    if (ch === '(' && current.trim() === '') {
      const end = closing(command, i);
      nested.push(command.slice(i + 1, end));
      i = end;
      continue;
    }
    if (ch === ';' || ch === '\n' || ch === '|' || ch === '&') {
      parts.push(current);
      current = '';
      if ((ch === '|' || ch === '&') && command[i + 1] === ch) i++;
      continue;
    }
    current += ch;
  }
  parts.push(current);
  const out: string[] = [];
  for (const p of parts.map((x) => x.trim()).filter(Boolean)) {
    out.push(p);
    const inner = /^(?:(?:sudo|env)\s+)?(?:ba|z|da)?sh\s+-[a-z]*c\s+(['"])([\s\S]*)\1\s*$/.exec(p);
    if (inner) out.push(...commandParts(inner[2]!, depth + 1));
  }
  for (const n of nested) out.push(...commandParts(n, depth + 1));
  return out;
}

/** Targets a recursive rm must never get: the root, home, system folders, the project itself, everything. */
const SWEEPING_TARGETS =
  /^(?:\/|\/\*|~|~\/|~\/\*|\$HOME\/?\*?|\$\{HOME\}\/?\*?|\.|\.\/|\.\/\*|\*|\.\.|\.\.\/|\/(?:bin|boot|dev|etc|home|lib|lib64|opt|proc|root|sbin|srv|sys|usr|var)\/?\*?)$/;

function isSweepingRemove(part: string): boolean {
  const words = part.split(/\s+/).map((w) => w.replace(/^(['"])(.*)\1$/, '$2'));
  if (words[0] !== 'rm') return false;
  const flags = words.slice(1).filter((w) => w.startsWith('-') && w !== '--');
  const recursive = flags.some((f) => f === '--recursive' || (/^-[a-zA-Z]+$/.test(f) && /[rR]/.test(f)));
  const targets = words.slice(1).filter((w) => !w.startsWith('-'));
  return recursive && targets.some((t) => SWEEPING_TARGETS.test(t));
}

function closing(s: string, open: number): number {
  let level = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') level++;
    else if (s[i] === ')' && --level === 0) return i;
  }
  return s.length;
}

function isRegex(blocked: string): boolean {
  const b = blocked.trim();
  return b.length > 2 && b.startsWith('/') && b.endsWith('/');
}

function matchesBlocked(part: string, blocked: string): boolean {
  const b = blocked.trim();
  if (!b) return false;
  if (isRegex(b)) {
    try {
      return new RegExp(b.slice(1, -1)).test(part);
    } catch {
      return false;
    }
  }
  const words = part.split(/\s+/).join(' ');
  return words === b || words.startsWith(`${b} `);
}

function isUnder(rel: string, allowed: string): boolean {
  const a = path.normalize(allowed).replace(/[\\/]+$/, '');
  if (a === '.' || a === '') return true;
  return rel === a || rel.startsWith(`${a}${path.sep}`);
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= 120 ? one : `${one.slice(0, 119)}…`;
}
