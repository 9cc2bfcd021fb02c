/**
 * What every hook entry shares: the host's JSON on stdin, the project it names, the decision on stdout, and
 * failing open (an internal error is reported on stderr and the action goes through, so a broken hook never
 * wedges the host).
 */
import fs from 'node:fs';
import { config as zodConfig } from 'zod/mini';
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
  const { chunks, done } = readStdinSync();
  let size = chunks.reduce((n, c) => n + c.length, 0);
  if (!done) {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_INPUT_BYTES) throw new Error(`hook input over ${MAX_INPUT_BYTES} bytes`);
      chunks.push(chunk);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? (JSON.parse(text) as HookInput) : {};
}

/**
 * Read stdin with plain blocking reads: building `process.stdin` (a stream, for a pipe a net.Socket) costs
 * several milliseconds of a hook's start. `done` is false when the descriptor would block (a non-blocking
 * pipe), and the stream reads the rest.
 */
function readStdinSync(): { chunks: Buffer[]; done: boolean } {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  let size = 0;
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EOF') return { chunks, done: true };
      if (code === 'EAGAIN') return { chunks, done: false };
      throw err;
    }
    if (n === 0) return { chunks, done: true };
    size += n;
    if (size > MAX_INPUT_BYTES) throw new Error(`hook input over ${MAX_INPUT_BYTES} bytes`);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
}

/** Write the answer with blocking writes (no stdout stream to build), falling back to the stream if fd 1 would block. */
function writeOutput(text: string): void {
  const data = Buffer.from(text, 'utf8');
  let off = 0;
  try {
    while (off < data.length) off += fs.writeSync(1, data, off, data.length - off);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    process.stdout.write(data.subarray(off));
  }
}

/** Run one hook: `handle` gets the project root, its environment and the input; its answer goes to stdout. */
export function runHook(
  handle: (root: string, env: NodeJS.ProcessEnv, input: HookInput) => HookOutput | Promise<HookOutput>,
): void {
  // A hook validates each record once: compiling zod's fast path for it would cost more than it saves.
  zodConfig({ jitless: true });
  const main = async () => {
    const input = await readInput();
    // The host's cwd names the project unless the environment already does.
    const env =
      input.cwd && !process.env.CLAUDE_PROJECT_DIR && !process.env.LOKI_PROJECT_DIR
        ? { ...process.env, LOKI_PROJECT_DIR: input.cwd }
        : process.env;
    const { root } = resolveProjectRoot(undefined, env, process.cwd());
    const out = await handle(root, env, input);
    if (out) writeOutput(`${JSON.stringify(out)}\n`);
  };
  main().catch((err: unknown) => {
    process.stderr.write(`loki-hook: ${(err as Error).message ?? String(err)} (the hook let the action through)\n`);
    process.exitCode = 0;
  });
}
