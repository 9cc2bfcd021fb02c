/**
 * The PreToolUse hook on its own: it runs before every shell command and file write, so it loads only the
 * project root, the settings and the guard's rules (no record schemas, no queue, no MCP SDK).
 *
 * It fails closed: a setting it cannot read, input it cannot read or that is over the size it reads, or any
 * other failure refuses the call with the reason, in a Loki Mode project (outside one it has nothing to guard).
 * The rules are pure (domain/guard.ts); what needs the file system, the real location of a path through
 * symlinks, is passed in from here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_FILE, resolveConfig, typedConfig } from '../config/load.js';
import { FILE_TOOLS, guardToolCall } from '../domain/guard.js';
import { readFileIfExists } from '../store/fsx.js';
import { SafeDir } from '../store/paths.js';
import { HookInputTooLarge, MAX_INPUT_BYTES, lokiAbove, runHook, type HookInput, type HookOutput } from './io.js';

const GUARD_ENV = ['LOKI_ALLOWED_PATHS', 'LOKI_BLOCKED_COMMANDS', 'LOKI_STAGED_AUTONOMY'];

/** The hook entry (bin/hook-guard-main.ts). */
export function runGuardHook(): void {
  runHook(guardHook, guardFailure);
}

export function guardHook(root: string, env: NodeJS.ProcessEnv, input: HookInput): HookOutput {
  // Only the tools it judges: a broken setting must not stop the agent reading.
  const tool = input.tool_name;
  if (tool === undefined || !judges(tool)) return null;
  const hasLoki = isDirectory(path.join(root, '.loki'));
  // Outside a Loki Mode project the guard has nothing to protect and no settings of its own.
  if (!hasLoki && !GUARD_ENV.some((k) => env[k] !== undefined)) return null;
  const text = hasLoki
    ? readFileIfExists(SafeDir.open(path.join(root, '.loki')), CONFIG_FILE, 1024 * 1024)?.toString('utf8')
    : undefined;
  const effective = resolveConfig(text, env);
  if (effective.problems.length > 0) {
    // Any problem, even in a setting the guard does not read: a typo can hide the guard's own settings.
    return deny(
      `loki-mode's guard cannot read its settings, so it refuses every shell command and file write until they are fixed: ` +
        `${effective.problems.join('; ')}. Ask the user to fix .loki/config.yaml or the LOKI_* variable (\`loki config\` lists every setting and its problems)`,
    );
  }
  const d = guardToolCall(tool, input.tool_input ?? {}, {
    projectRoot: root,
    cwd: shellDirectory(input.cwd),
    home: env.HOME || os.homedir(),
    realpath: realLocation,
    ...typedConfig(effective).guard,
  });
  if (d.decision === 'allow') return null;
  return decision(d.decision, d.reason);
}

/** An error anywhere in the hook: refused, with the reason, wherever the guard has something to guard. */
export function guardFailure(err: unknown, input: HookInput | null, env: NodeJS.ProcessEnv): HookOutput {
  if (input && !judges(input.tool_name)) return null;
  const named = input?.cwd ?? (err instanceof HookInputTooLarge ? err.cwd : undefined);
  const dirs = [
    named,
    named === undefined ? undefined : (lokiAbove(named, env) ?? undefined),
    env.LOKI_PROJECT_DIR,
    env.CLAUDE_PROJECT_DIR,
    process.cwd(),
  ].filter((d): d is string => typeof d === 'string' && d.trim() !== '');
  const guarded = GUARD_ENV.some((k) => env[k] !== undefined) || dirs.some((d) => isDirectory(path.join(d, '.loki')));
  if (!guarded) return null;
  if (err instanceof HookInputTooLarge) {
    return deny(
      `this tool call's input is over the ${MAX_INPUT_BYTES / 1024 / 1024} MB the guard reads, so it cannot be ` +
        'checked and is refused: write the file in parts under 4 MB (Write the first part, then Edit to add the ' +
        'rest), or split the command',
    );
  }
  const message = (err as Error)?.message ?? String(err);
  return deny(
    `loki-mode's guard could not check this tool call (${message}), so it refuses it rather than let it through unchecked; ` +
      'fix what the message names, or run `loki doctor`',
  );
}

/**
 * Where the shell is: the host keeps the Bash tool's working directory across calls (`cd src` in one call, then
 * `rm -rf *` in the next runs in src), and names it in the input's `cwd`. Its real path, when it is an existing
 * folder; otherwise the guard starts at the project root.
 */
function shellDirectory(cwd: string | undefined): string | undefined {
  if (typeof cwd !== 'string' || !path.isAbsolute(cwd) || cwd.includes('\0')) return undefined;
  try {
    const real = fs.realpathSync.native(cwd);
    return fs.statSync(real).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}

function judges(tool: string | undefined): boolean {
  return tool === 'Bash' || (tool !== undefined && FILE_TOOLS[tool] !== undefined);
}

function deny(reason: string): HookOutput {
  return decision('deny', reason);
}

function decision(permissionDecision: 'deny' | 'ask', reason: string): HookOutput {
  return {
    hookSpecificOutput: {
      hookEventName: 'PreToolUse',
      permissionDecision,
      permissionDecisionReason: reason,
    },
  };
}

function isDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where a path really is: its nearest existing ancestor with symlinks resolved, the rest as written. A dangling
 * symlink is followed to its target, since a write through it creates the target.
 */
function realLocation(abs: string, hops = 0): string {
  const rest: string[] = [];
  let dir = abs;
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(dir), ...rest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && hops < 40) {
        let link: string | null = null;
        try {
          link = fs.readlinkSync(dir);
        } catch {
          link = null;
        }
        if (link !== null) return realLocation(path.join(path.resolve(path.dirname(dir), link), ...rest), hops + 1);
      }
      const parent = path.dirname(dir);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === dir) return abs;
      rest.unshift(path.basename(dir));
      dir = parent;
    }
  }
}
