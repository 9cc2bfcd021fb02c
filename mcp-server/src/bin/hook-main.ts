/**
 * `loki-hook <event>` for SessionStart, Stop and SessionEnd (bundle: hook.cjs, run by dist/loki-hook.cjs). It
 * prints the handler's JSON decision on stdout. PreToolUse and PostToolUse, which run on every tool call, are
 * bundles of their own (hook-guard-main.ts, hook-usage-main.ts) that bin/loki-hook.ts starts instead: this bundle
 * carries neither the guard nor the usage code.
 */
import { Project } from '../project.js';
import { sessionEnd, sessionStart, stop } from '../hooks/handlers.js';
import { runHook, type HookInput, type HookOutput } from '../hooks/io.js';

const HANDLERS: Record<string, (p: Project, i: HookInput) => HookOutput | Promise<HookOutput>> = {
  'session-start': sessionStart,
  stop,
  'session-end': sessionEnd,
};

const event = process.argv[2] ?? '';
if (HANDLERS[event]) {
  runHook(async (root, env, input) => {
    const project = new Project({ root, env, actor: `hook:${process.pid}` });
    try {
      return await HANDLERS[event]!(project, input);
    } finally {
      project.close();
    }
  });
} else {
  process.stderr.write(
    `loki-hook: unknown event "${event}"; use one of session-start, pre-tool-use, post-tool-use, stop, session-end\n`,
  );
}
