/**
 * Run one check command through the shell, in the project root, in its own process group, with a time limit.
 * On timeout the whole group gets SIGTERM, then SIGKILL after a grace period; after the shell exits, anything
 * it left running in its group is killed too, so no check outlives its verification.
 */
import { spawn } from 'node:child_process';
import { scrubText } from '../domain/secrets.js';

/** Output kept in memory for reading test counts (the head is dropped past this). */
export const CAPTURE_BYTES = 1024 * 1024;
/** Output tail kept in the record. */
export const TAIL_BYTES = 4096;
const KILL_GRACE_MS = 2000;
/** After the shell exits, how long to wait for its output pipes to drain. */
const DRAIN_MS = 1000;

export interface CommandResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** stdout and stderr interleaved, the last CAPTURE_BYTES of it (never stored: it may hold secrets). */
  output: string;
  outputBytes: number;
  /** Why the command could not be started at all. */
  spawnError: string | null;
}

export interface RunOptions {
  cwd: string;
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
}

export function runCommand(command: string, opts: RunOptions): Promise<CommandResult> {
  const started = process.hrtime.bigint();
  const env: NodeJS.ProcessEnv = { ...opts.env, CI: opts.env.CI ?? 'true', NO_COLOR: '1' };
  delete env.FORCE_COLOR;
  const chunks: Buffer[] = [];
  let kept = 0;
  let outputBytes = 0;
  const keep = (chunk: Buffer) => {
    outputBytes += chunk.length;
    chunks.push(chunk);
    kept += chunk.length;
    while (kept - chunks[0]!.length >= CAPTURE_BYTES) kept -= chunks.shift()!.length;
  };

  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: string | null } | null = null;
    const timers: NodeJS.Timeout[] = [];
    const child = spawn(command, {
      cwd: opts.cwd,
      env,
      shell: true,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* the group is gone */
      }
    };
    const finish = (spawnError: string | null) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      child.stdout?.destroy();
      child.stderr?.destroy();
      const all = Buffer.concat(chunks);
      const output = (kept > CAPTURE_BYTES ? all.subarray(all.length - CAPTURE_BYTES) : all).toString('utf8');
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        timedOut,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e6),
        output,
        outputBytes,
        spawnError,
      });
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('error', (err) => finish(err.message));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Whatever the shell left behind in its group (a server a test forgot to stop) goes with it.
      killGroup('SIGKILL');
      timers.push(setTimeout(() => finish(null), DRAIN_MS));
    });
    child.on('close', () => finish(null));
    timers.push(
      setTimeout(() => {
        if (exit) return;
        timedOut = true;
        killGroup('SIGTERM');
        timers.push(setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS));
      }, opts.timeoutMs),
    );
  });
}

/** The last TAIL_BYTES of the output, cut at a line start, with secrets replaced by `[REDACTED:<kind>]`. */
export function outputTail(output: string): string {
  // Scrub a wider window first so a secret straddling the cut is still recognised whole.
  const window = output.length > TAIL_BYTES * 2 ? output.slice(-TAIL_BYTES * 2) : output;
  const scrubbed = scrubText(window).text;
  if (Buffer.byteLength(scrubbed, 'utf8') <= TAIL_BYTES) return scrubbed;
  let tail = Buffer.from(scrubbed, 'utf8').subarray(-TAIL_BYTES).toString('utf8');
  const nl = tail.indexOf('\n');
  if (nl >= 0 && nl < 400) tail = tail.slice(nl + 1);
  return tail.replace(/^\uFFFD+/, '');
}
