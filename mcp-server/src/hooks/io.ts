/**
 * What every hook entry shares: the host's JSON on stdin, the project it names, the decision on stdout, and what
 * an internal error becomes. By default the hook fails open (the error is reported on stderr and the action goes
 * through, so a broken hook never wedges the host); the guard passes `onError` to fail closed instead, since a
 * guard that lets everything through when it breaks guards nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { config as zodConfig } from 'zod/mini';
import { lokiHomeDir } from '../home.js';
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

export const MAX_INPUT_BYTES = 4 * 1024 * 1024;
/** Past the limit the rest is read and dropped, so the host never writes into a closed pipe; up to this much. */
const MAX_DRAIN_BYTES = 256 * 1024 * 1024;

/** Hook input larger than the hook reads; `cwd` is the project the host named at its start, if it did. */
export class HookInputTooLarge extends Error {
  constructor(readonly cwd: string | undefined) {
    super(`hook input over ${MAX_INPUT_BYTES} bytes`);
  }
}

/** The `cwd` field from the start of input too large to parse (the host writes it before the tool input). */
function cwdFromHead(head: Buffer | undefined): string | undefined {
  const m = head ? /"cwd"\s*:\s*("(?:[^"\\]|\\.)*")/.exec(head.subarray(0, 64 * 1024).toString('utf8')) : null;
  try {
    return m ? (JSON.parse(m[1]!) as string) : undefined;
  } catch {
    return undefined;
  }
}

/** How many folders above a cwd the search for `.loki/` climbs. */
const MAX_CLIMB = 64;

/**
 * The nearest folder at or above `dir` (absolute) holding a project's `.loki/` folder, or null. The Loki home
 * (`~/.loki` by default) is not a project's: a project without `.loki/` under the home folder finds nothing.
 */
export function lokiAbove(dir: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (!path.isAbsolute(dir) || dir.includes('\0')) return null;
  const home = realOrSelf(lokiHomeDir(env));
  let d = path.resolve(dir);
  for (let i = 0; i < MAX_CLIMB; i++) {
    const loki = path.join(d, '.loki');
    try {
      if (fs.lstatSync(loki).isDirectory() && realOrSelf(loki) !== home) return d;
    } catch {
      // not here
    }
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
  return null;
}

function realOrSelf(p: string): string {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return p;
  }
}

async function readInput(): Promise<HookInput> {
  const { chunks, done, size: read } = readStdinSync();
  let size = read;
  if (!done) {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= MAX_INPUT_BYTES) chunks.push(chunk);
      else if (size > MAX_DRAIN_BYTES) break;
    }
  }
  if (size > MAX_INPUT_BYTES) throw new HookInputTooLarge(cwdFromHead(Buffer.concat(chunks)));
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? (JSON.parse(text) as HookInput) : {};
}

/**
 * Read stdin with plain blocking reads: building `process.stdin` (a stream, for a pipe a net.Socket) costs
 * several milliseconds of a hook's start. `done` is false when the descriptor would block (a non-blocking
 * pipe), and the stream reads the rest.
 */
function readStdinSync(): { chunks: Buffer[]; done: boolean; size: number } {
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(64 * 1024);
  let size = 0;
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EOF') return { chunks, done: true, size };
      if (code === 'EAGAIN') return { chunks, done: false, size };
      throw err;
    }
    if (n === 0) return { chunks, done: true, size };
    size += n;
    if (size <= MAX_INPUT_BYTES) chunks.push(Buffer.from(buf.subarray(0, n)));
    else if (size > MAX_DRAIN_BYTES) return { chunks, done: true, size };
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

/**
 * Run one hook: `handle` gets the project root, its environment and the input; its answer goes to stdout. An
 * error (unreadable or oversized input, a project root that cannot be used, a failure of the handler) goes to
 * `onError` with the input if it was read; its answer, if any, goes to stdout, otherwise the action goes through.
 */
export function runHook(
  handle: (root: string, env: NodeJS.ProcessEnv, input: HookInput) => HookOutput | Promise<HookOutput>,
  onError?: (err: unknown, input: HookInput | null, env: NodeJS.ProcessEnv) => HookOutput,
): void {
  // A hook validates each record once: compiling zod's fast path for it would cost more than it saves.
  zodConfig({ jitless: true });
  let read: HookInput | null = null;
  const main = async () => {
    const input = await readInput();
    read = input;
    // The host's cwd names the project unless the environment already does: the nearest folder at or above it
    // holding `.loki/` (the shell may have `cd`-ed into a subfolder), else the cwd itself.
    const env =
      input.cwd && !process.env.CLAUDE_PROJECT_DIR && !process.env.LOKI_PROJECT_DIR
        ? { ...process.env, LOKI_PROJECT_DIR: lokiAbove(input.cwd, process.env) ?? input.cwd }
        : process.env;
    const { root } = resolveProjectRoot(undefined, env, process.cwd());
    const out = await handle(root, env, input);
    if (out) writeOutput(`${JSON.stringify(out)}\n`);
  };
  main().catch((err: unknown) => {
    const message = (err as Error).message ?? String(err);
    let out: HookOutput = null;
    try {
      out = onError?.(err, read, process.env) ?? null;
    } catch (again) {
      process.stderr.write(`loki-hook: ${(again as Error).message ?? String(again)}\n`);
    }
    if (out) {
      try {
        writeOutput(`${JSON.stringify(out)}\n`);
      } catch {
        out = null;
      }
    }
    process.stderr.write(
      `loki-hook: ${message} (${out ? 'the hook refused the action' : 'the hook let the action through'})\n`,
    );
    process.exitCode = 0;
  });
}
