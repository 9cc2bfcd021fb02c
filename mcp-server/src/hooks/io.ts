/**
 * What every hook entry shares: the host's JSON on stdin, the project it names, the decision on stdout, and
 * failing open (an internal error is reported on stderr and the action goes through, so a broken hook never
 * wedges the host).
 */
import { resolveProjectRoot } from '../root.js';

export interface HookInput {
  hook_event_name?: string;
  session_id?: string;
  transcript_path?: string;
  cwd?: string;
  tool_name?: string;
  tool_input?: Record<string, unknown>;
  stop_hook_active?: boolean;
  source?: string;
}

export type HookOutput = Record<string, unknown> | null;

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

/** Run one hook: `handle` gets the project root, its environment and the input; its answer goes to stdout. */
export function runHook(handle: (root: string, env: NodeJS.ProcessEnv, input: HookInput) => HookOutput | Promise<HookOutput>): void {
  const main = async () => {
    const input = await readInput();
    // The host's cwd names the project unless the environment already does.
    const env = input.cwd && !process.env.CLAUDE_PROJECT_DIR && !process.env.LOKI_PROJECT_DIR ? { ...process.env, LOKI_PROJECT_DIR: input.cwd } : process.env;
    const { root } = resolveProjectRoot(undefined, env, process.cwd());
    const out = await handle(root, env, input);
    if (out) process.stdout.write(`${JSON.stringify(out)}\n`);
  };
  main().catch((err: unknown) => {
    process.stderr.write(`loki-hook: ${(err as Error).message ?? String(err)} (the hook let the action through)\n`);
    process.exitCode = 0;
  });
}
