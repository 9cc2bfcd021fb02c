/**
 * The PreToolUse hook on its own: it runs before every shell command and file write, so it loads only the
 * project root, the settings and the guard's rules (no record schemas, no queue, no MCP SDK).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, resolveConfig, typedConfig } from '../config/load.js';
import { guardToolCall } from '../domain/guard.js';
import { readFileIfExists } from '../store/fsx.js';
import { SafeDir } from '../store/paths.js';
import type { HookInput, HookOutput } from './io.js';
import { ConfigError } from '../errors.js';

const GUARD_ENV = ['LOKI_ALLOWED_PATHS', 'LOKI_BLOCKED_COMMANDS', 'LOKI_STAGED_AUTONOMY'];

export function guardHook(root: string, env: NodeJS.ProcessEnv, input: HookInput): HookOutput {
  if (!input.tool_name) return null;
  let hasLoki = false;
  try {
    hasLoki = fs.lstatSync(path.join(root, '.loki')).isDirectory();
  } catch {
    hasLoki = false;
  }
  // Outside a Loki Mode project the guard has nothing to protect and no settings of its own.
  if (!hasLoki && !GUARD_ENV.some((k) => env[k] !== undefined)) return null;
  const text = hasLoki
    ? readFileIfExists(SafeDir.open(path.join(root, '.loki')), CONFIG_FILE, 1024 * 1024)?.toString('utf8')
    : undefined;
  const effective = resolveConfig(text, env);
  if (effective.problems.length > 0) throw new ConfigError(effective.problems);
  const d = guardToolCall(input.tool_name, input.tool_input ?? {}, {
    projectRoot: root,
    ...typedConfig(effective).guard,
  });
  if (d.decision === 'allow') return null;
  return {
    hookSpecificOutput: {
      hookEventName: 'PreToolUse',
      permissionDecision: d.decision,
      permissionDecisionReason: d.reason,
    },
  };
}
