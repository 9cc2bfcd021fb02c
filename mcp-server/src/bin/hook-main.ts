/**
 * `loki-hook <event>`: the Claude Code hook entry (bundle: hook.cjs, run by dist/loki-hook.js). It reads the
 * host's JSON from stdin, runs the handler and prints its JSON decision on stdout. It fails open: on any
 * internal error it says so on stderr and exits 0 without a decision, so a broken hook never wedges the host.
 */
import { Project, resolveProjectRoot } from '../project.js';
import { postToolUse, preToolUse, sessionEnd, sessionStart, stop, type HookInput, type HookOutput } from '../hooks/handlers.js';

const HANDLERS: Record<string, (p: Project, i: HookInput) => HookOutput | Promise<HookOutput>> = {
  'session-start': sessionStart,
  'pre-tool-use': preToolUse,
  'post-tool-use': postToolUse,
  stop,
  'session-end': sessionEnd,
};
const MAX_INPUT_BYTES = 4 * 1024 * 1024;

async function readInput(): Promise<HookInput> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_INPUT_BYTES) throw new Error(`hook input over ${MAX_INPUT_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? (JSON.parse(text) as HookInput) : {};
}

async function main(): Promise<void> {
  const event = process.argv[2] ?? '';
  const handler = HANDLERS[event];
  if (!handler) {
    process.stderr.write(`loki-hook: unknown event "${event}"; use one of ${Object.keys(HANDLERS).join(', ')}\n`);
    process.exitCode = 0;
    return;
  }
  const input = await readInput();
  const env = input.cwd && !process.env.CLAUDE_PROJECT_DIR && !process.env.LOKI_PROJECT_DIR ? { ...process.env, LOKI_PROJECT_DIR: input.cwd } : process.env;
  const { root } = resolveProjectRoot(undefined, env, process.cwd());
  const project = new Project({ root, env, actor: `hook:${process.pid}` });
  try {
    const out = await handler(project, input);
    if (out) process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    project.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`loki-hook: ${(err as Error).message ?? String(err)} (the hook let the action through)\n`);
  process.exitCode = 0;
});
