/**
 * `loki-hook <event>`: the Claude Code hook entry (bundle: hook.cjs, run by dist/loki-hook.js; PreToolUse and
 * PostToolUse, which run on every tool call, have smaller bundles of their own: hook-guard-main.ts, hook-usage-main.ts). It prints the handler's JSON decision on stdout.
 */
import { Project } from '../project.js';
import { sessionEnd, sessionStart, stop } from '../hooks/handlers.js';
import { runGuardHook } from '../hooks/guard-hook.js';
import { runHook, type HookInput, type HookOutput } from '../hooks/io.js';
import { usageHook } from '../hooks/usage-hook.js';

const HANDLERS: Record<string, (p: Project, i: HookInput) => HookOutput | Promise<HookOutput>> = {
  'session-start': sessionStart,
  stop,
  'session-end': sessionEnd,
};

const event = process.argv[2] ?? '';
if (event === 'pre-tool-use') runGuardHook();
else if (event === 'post-tool-use') runHook(usageHook);
else if (HANDLERS[event]) {
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
