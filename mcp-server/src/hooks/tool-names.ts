/**
 * The names Claude Code shows the model for our tools. The server registers `loki_status`; the model sees
 * `mcp__<server>__loki_status`, where <server> is `plugin_<plugin>_<name>` for a plugin's server and the entry's key
 * for one in `.mcp.json` or the user's file. Text the hooks hand the model names tools that way, or the model looks
 * for a tool that is not there.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The server name our plugin's `.mcp.json` and `loki install claude` both use. */
const SERVER = 'loki';
const PLUGIN = 'loki-mode';

/** Claude Code keeps letters, digits, `_` and `-` in the parts of a tool name; anything else becomes `_`. */
function part(name: string): string {
  return name.replace(/[^a-zA-Z0-9_-]/g, '_');
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The prefix the host puts before our tool names. A plugin's hooks run with CLAUDE_PLUGIN_ROOT (and the plugin's
 * name is in its manifest); other hooks are wired by hand next to a server in the project's `.mcp.json`, found by
 * the launcher it runs, else registered by `loki install claude` as `loki`.
 */
export function toolPrefix(root: string, env: NodeJS.ProcessEnv): string {
  const pluginRoot = env.CLAUDE_PLUGIN_ROOT;
  if (pluginRoot) {
    const manifest = readJson(path.join(pluginRoot, '.claude-plugin', 'plugin.json')) as { name?: unknown } | undefined;
    const plugin = typeof manifest?.name === 'string' && manifest.name ? manifest.name : PLUGIN;
    return `mcp__plugin_${part(plugin)}_${SERVER}__`;
  }
  const servers = (readJson(path.join(root, '.mcp.json')) as { mcpServers?: unknown } | undefined)?.mcpServers;
  if (servers && typeof servers === 'object' && !(SERVER in servers)) {
    const ours = Object.entries(servers as Record<string, { command?: unknown; args?: unknown }>).find(([, e]) =>
      JSON.stringify([e?.command, e?.args]).includes('loki-mcp'),
    );
    if (ours) return `mcp__${part(ours[0])}__`;
  }
  return `mcp__${SERVER}__`;
}

/** Our tool names in `text` (`loki_status`, `loki_task_claim`, ...) as the host shows them. */
export function hostNames(text: string, prefix: string): string {
  return text.replace(/(?<![\w./-])loki_[a-z]+(?:_[a-z]+)*/g, (name) => prefix + name);
}
